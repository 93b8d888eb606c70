import { startTransition, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { paths } from './config/paths';
import { App, queryClient } from './app/App';
import { prefetchPageData, preloadPage } from './app/pages';
import { startSessionCheck } from './app/session';

// Before the first render: the session answer, the page's own chunk and the Dashboard's figures
// are on their way while React renders the shell. (A list's first read is not started here: a
// list read before the page subscribes to its live topic misses the events in between —
// docs/frontend.md.)
// Signed out: the login page comes next, and nothing read before is kept. (The bootstrap in
// session.ts handles the answer.)
startSessionCheck().catch(() => {
  queryClient.clear();
  preloadPage(paths.login);
});
prefetchPageData(queryClient, window.location.pathname);
preloadPage(window.location.pathname);

// A transition: React renders the first tree in slices of a few milliseconds, yielding to the
// browser in between, instead of one long task (on a slow phone, hundreds of milliseconds).
const root = createRoot(document.getElementById('root')!);
startTransition(() =>
  root.render(
    <StrictMode>
      <App />
    </StrictMode>,
  ),
);
