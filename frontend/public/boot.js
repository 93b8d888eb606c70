// Runs before the app's script, as soon as index.html's static shell is parsed (a classic
// script: the CSP allows no inline one). It completes that shell for the first paint: the
// page's heading, which is most pages' largest paint (app/nav.ts's labels: a unit test,
// app/boot.test.ts, keeps the two equal), and the colour mode kept in localStorage
// (lib/ui.ts) or else the system's, as `data-mode` on <html> (index.html's CSS follows it;
// app/App.tsx keeps it), so the shell is not painted light and then dark. React then draws the same
// shell over it (app/AppShell.tsx).
(function () {
  var titles = {
    '/': 'Dashboard',
    '/governance': 'Governance',
    '/budget': 'Budget',
    '/dlq': 'Dead letters',
    '/breakers': 'Circuit breakers',
    '/sandbox': 'Sandbox',
    '/audit': 'Audit log',
    '/users': 'Users',
  };
  var path = window.location.pathname;
  var title = titles[path];
  if (title === undefined && path !== '/') {
    for (var p in titles) if (p !== '/' && path.indexOf(p + '/') === 0) title = titles[p];
  }
  var mode = null;
  try {
    mode = window.localStorage.getItem('cp.colourMode');
  } catch {
    /* storage unavailable: the system's mode */
  }
  if (mode !== 'light' && mode !== 'dark') {
    var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    mode = dark ? 'dark' : 'light';
  }
  document.documentElement.dataset.mode = mode;
  var root = document.getElementById('root');
  // The sign-in page has no shell.
  if (path === '/login' || path.indexOf('/login/') === 0) {
    if (root) root.textContent = '';
    return;
  }
  var heading = document.getElementById('boot-title');
  if (heading && title) heading.textContent = title;
})();
