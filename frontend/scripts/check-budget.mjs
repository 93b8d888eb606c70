// Fails the build when the JavaScript a page needs grows past its budget (gzipped): the initial
// load (the entry and what it imports statically) and each route's own lazy chunk on top of it.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const INITIAL_KB = 250;
const ROUTE_KB = 150;
// Routes allowed more, and why. The initial budget is the same for every route.
const ROUTE_KB_OVERRIDE = {
  // Monaco (the editor, its features and tokenizers: ~950 KB gzipped in monaco-editor 0.55)
  // loads with the Sandbox page only, after the page itself has rendered.
  SandboxPage: 1100,
};

const dist = new URL('../dist/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('.vite/manifest.json', dist), 'utf8'));
const gz = (file) => gzipSync(readFileSync(new URL(file, dist))).length;

function closure(key, seen = new Set()) {
  if (seen.has(key)) return seen;
  seen.add(key);
  for (const i of manifest[key]?.imports ?? []) closure(i, seen);
  return seen;
}
const js = (keys) => [...keys].map((k) => manifest[k].file).filter((f) => f.endsWith('.js'));
const size = (files) => files.reduce((n, f) => n + gz(f), 0);

const entryKey = Object.keys(manifest).find((k) => manifest[k].isEntry);
// The entry, what it imports, and the chunks index.html has fetched from the start (the
// start-up stages main.tsx imports next, vite.config.ts): every page loads them.
const initial = closure(entryKey);
const html = readFileSync(new URL('index.html', dist), 'utf8');
for (const [, href] of html.matchAll(/<link rel="modulepreload"[^>]*href="\/([^"]+)"/g)) {
  const key = Object.keys(manifest).find((k) => manifest[k].file === href);
  if (!key) throw new Error(`index.html preloads ${href}, which the manifest does not know`);
  closure(key, initial);
}
const initialBytes = size(js(initial));
const report = {
  initial_kb: +(initialBytes / 1024).toFixed(1),
  initial_budget_kb: INITIAL_KB,
  routes: {},
};
const failures = [];
if (initialBytes > INITIAL_KB * 1024)
  failures.push(`initial JS ${report.initial_kb} KB > ${INITIAL_KB} KB`);

// Each chunk the initial load imports lazily (the routes, and e.g. the toasts' snackbar).
const lazyRoots = new Set(
  [...initial].flatMap((k) => manifest[k].dynamicImports ?? []).filter((k) => !initial.has(k)),
);
for (const dyn of lazyRoots) {
  const own = [...closure(dyn)].filter((k) => !initial.has(k));
  // A route's lazy chunks (e.g. its charts) count too: what opening the page downloads.
  const lazy = new Set(own);
  for (const k of own)
    for (const d of manifest[k].dynamicImports ?? [])
      for (const c of closure(d)) if (!initial.has(c)) lazy.add(c);
  const bytes = size(js(lazy));
  const name = manifest[dyn].name ?? dyn;
  report.routes[name] = +(bytes / 1024).toFixed(1);
  const limit = ROUTE_KB_OVERRIDE[name] ?? ROUTE_KB;
  if (bytes > limit * 1024) failures.push(`route ${name} ${report.routes[name]} KB > ${limit} KB`);
}
writeFileSync(new URL('budget.json', dist), JSON.stringify(report, null, 2) + '\n');
console.log(
  `JS budget (gzipped): initial ${report.initial_kb} KB of ${INITIAL_KB}; per route (limit ${ROUTE_KB}, ${JSON.stringify(ROUTE_KB_OVERRIDE)}):`,
  report.routes,
);
if (failures.length) {
  console.error('over budget:\n  ' + failures.join('\n  '));
  process.exit(1);
}
