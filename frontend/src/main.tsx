import { startTransition, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { paths } from './config/paths';
import { App, queryClient } from './app/App';
import { prefetchPageData, preloadPage } from './app/pages';
import { startSessionCheck } from './app/session';

// This script's evaluation is one long task; what follows it is split into tasks of their own,
// so that the browser can paint and answer input in between (a phone is four times slower
// than this machine): the reads, then the page's chunk (Vite's preload of it appends a
// <link rel="modulepreload"> per module it imports: 13-30 ms on a busy machine), then React's
// first render (itself sliced, below).
const nextTask = (fn: () => void) => setTimeout(fn, 0);

// Before the first render, in this order: the session answer, the page's first read (its
// list, or the Dashboard's figures: it no longer waits for the page's chunk and first render)
// and the page's own chunk are on their way while React renders the shell. (The page's live
// topic then follows from that read: it is read again once subscribed, so nothing committed
// in between is missed.)
// Signed out: the login page comes next, and nothing read before is kept. (The bootstrap in
// session.ts handles the answer.)
startSessionCheck().catch(() => {
  queryClient.clear();
  preloadPage(paths.login);
});
prefetchPageData(queryClient, window.location);
nextTask(() => {
  preloadPage(window.location.pathname);
  nextTask(() => {
    // A transition: React renders the first tree in slices of a few milliseconds, yielding to
    // the browser in between, instead of one long task (on a slow phone, hundreds of
    // milliseconds).
    const root = createRoot(document.getElementById('root')!);
    startTransition(() =>
      root.render(
        <StrictMode>
          <App />
        </StrictMode>,
      ),
    );
  });
});
