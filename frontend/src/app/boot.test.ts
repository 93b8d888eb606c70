import { readFileSync } from 'node:fs';
import { navItems, pageTitle } from './nav';

// public/boot.js completes index.html's static shell before the app's script: the page's
// heading (the same as the app's, or the largest paint would come again, later) and the
// colour mode kept by lib/ui.ts.
// (Vitest runs in frontend/.)
const source = readFileSync('public/boot.js', 'utf8');

function boot(path: string): { heading: string; root: HTMLElement } {
  window.history.replaceState(null, '', path);
  document.body.innerHTML =
    '<div id="root"><main><h1 id="boot-title"></h1></main></div><p id="after"></p>';
  new Function(source)();
  return {
    heading: document.getElementById('boot-title')?.textContent ?? '',
    root: document.getElementById('root')!,
  };
}

afterEach(() => {
  window.localStorage.clear();
  delete document.documentElement.dataset.mode;
  window.history.replaceState(null, '', '/');
});

test('the static heading is the page’s own, for every page and below it', () => {
  for (const item of navItems) {
    expect(boot(item.path).heading).toBe(item.label);
    if (item.path !== '/') expect(boot(`${item.path}/x?y=1`).heading).toBe(item.label);
  }
  expect(boot('/governance?q=acme').heading).toBe(pageTitle('/governance'));
});

test('a path that is no page’s has no heading; the sign-in page has no shell', () => {
  expect(boot('/forbidden').heading).toBe('');
  expect(boot('/governancex').heading).toBe('');
  expect(boot('/login?next=%2Fdlq').root.childElementCount).toBe(0);
});

test('the colour mode chosen in the app is the static shell’s, else the system’s', () => {
  const system = (dark: boolean) => {
    window.matchMedia = ((q: string) => ({
      matches: dark && q === '(prefers-color-scheme: dark)',
    })) as unknown as typeof window.matchMedia;
  };
  system(false);
  boot('/');
  expect(document.documentElement.dataset.mode).toBe('light');
  system(true);
  boot('/');
  expect(document.documentElement.dataset.mode).toBe('dark');
  window.localStorage.setItem('cp.colourMode', 'light');
  boot('/');
  expect(document.documentElement.dataset.mode).toBe('light');
  system(false);
  window.localStorage.setItem('cp.colourMode', 'dark');
  boot('/');
  expect(document.documentElement.dataset.mode).toBe('dark');
  window.localStorage.setItem('cp.colourMode', 'system');
  boot('/');
  expect(document.documentElement.dataset.mode).toBe('light');
});
