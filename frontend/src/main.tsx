import { startTransition, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { paths } from './config/paths';
import { App } from './app/App';
import { preloadPage } from './app/pages';
import { startSessionCheck } from './app/session';

// Both before the first render: the session answer and the page's own chunk are on their way
// while React renders the shell.
// Signed out: the login page comes next. (The bootstrap in session.ts handles the answer.)
startSessionCheck().catch(() => preloadPage(paths.login));
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
