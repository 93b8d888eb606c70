import { startTransition, StrictMode } from 'react';
import { paths } from './config/paths';
import { prefetchPageData, preloadPage } from './app/pages';
import { queryClient } from './app/queryClient';
import { showStartFailure } from './lib/loadFailure';
import { startSessionCheck } from './app/session';
import { resolvedMode, useUi } from './lib/ui';

// Start-up in tasks of its own each, so that the browser can paint and answer input in between
// (a phone is four times slower than this machine): this script (the reads, no React DOM, no
// MUI), then React DOM, then the app (MUI and the shell), then the theme, then React's first
// render (itself sliced, below). Each import is evaluated in the task it resolves in; all their
// chunks are fetched at once from the start (scripts/startup-stages.mjs).
const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

// The colour mode chosen in the app, before anything paints in the system's (index.html's CSS
// follows `data-mode`; App.tsx keeps it current).
const chosen = useUi.getState().mode;
if (chosen !== 'system') document.documentElement.dataset.mode = chosen;

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

async function start(): Promise<void> {
  await nextTask();
  // Vite's preload of the page's chunk appends a <link rel="modulepreload"> per module it
  // imports: 13-30 ms on a busy machine, so a task of its own too.
  preloadPage(window.location.pathname);
  const { createRoot } = await import('./app/reactDom');
  await nextTask();
  const { App, makeTheme } = await import('./app/App');
  await nextTask();
  makeTheme(
    resolvedMode(useUi.getState().mode, window.matchMedia('(prefers-color-scheme: dark)').matches),
  );
  await nextTask();
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
}
// A stage's chunk that does not arrive (the network, or a deploy under an open tab) would leave
// an empty page: say so, with a way to load it again.
start().catch((error: unknown) => showStartFailure(document.getElementById('root')!, error));
