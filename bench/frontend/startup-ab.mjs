// Start-up only, A/B: two (or more) builds of the dashboard served side by side on one seeded
// database; each page loaded on each build alternately (a fresh browser context each time,
// signed in by cookie), traced from the navigation until the first rows have been shown for a
// second. Per load: the renderer main thread's tasks' CPU time (the trace's `tdur`, which the
// machine's load barely changes, unlike Lighthouse's wall-clock figures), the longest, and
// `tbt_x4_ms`: the total blocking time the tasks would make on a CPU four times slower
// (Lighthouse's mobile preset), Σ max(0, 4 × cpu − 50 ms) — what Lighthouse's TBT follows.
// The whole run holds /tmp/bench.lock only while a page loads.
//   AB_DIRS="main=/path/to/dist,this=/path/to/dist"   the builds (default: frontend/dist)
//   AB_RUNS=5  AB_PAGES=/governance,/dlq,/audit,/
// Usage (from bench/frontend, after run.sh's npm ci): node startup-ab.mjs
import { chromium } from 'playwright-core';
import {
  alternate,
  apiAs,
  chromiumArgs,
  Deployment,
  median,
  seedBudgets,
  seedDeadLetters,
  serveBuilds,
} from '../../frontend/e2e/server.mjs';

const RUNS = Number(process.env.AB_RUNS ?? 5);
const PAGES = (process.env.AB_PAGES ?? '/governance,/dlq,/audit,/').split(',');
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

// What a page shows once its first read is in (the Dashboard: its health answer).
const firstContent = {
  '/': '#health :text-matches("^(Ready|Not ready)$")',
  '/governance': '[data-budget]',
  '/dlq': '[data-entry]',
  '/audit': '[data-position]',
};

/** The page's renderer main thread's top-level tasks, with the events that took most of each. */
function startupTasks(events, url) {
  const mains = events.filter((e) => e.ph === 'M' && e.args?.name === 'CrRendererMain');
  const runTasks = (m) =>
    events.filter(
      (e) => e.pid === m.pid && e.tid === m.tid && e.ph === 'X' && e.name === 'RunTask',
    );
  // The thread that ran the app's scripts (not another renderer of the browser's).
  const ranOurs = (m) =>
    events.some(
      (e) =>
        e.pid === m.pid &&
        e.tid === m.tid &&
        (e.args?.data?.url ?? '').startsWith(url) &&
        /EvaluateScript|v8.compileModule|ParseHTML/.test(e.name),
    );
  const main = mains
    .filter(ranOurs)
    .map((m) => ({ m, tasks: runTasks(m) }))
    .sort((a, b) => b.tasks.length - a.tasks.length)[0];
  if (!main) return null;
  const cpu = main.tasks.map((t) => (t.tdur ?? t.dur) / 1000);
  // The direct children of the longest tasks, by name (what each long task was).
  const longest = [...main.tasks]
    .sort((a, b) => (b.tdur ?? b.dur) - (a.tdur ?? a.dur))
    .slice(0, 3)
    .map((t) => {
      const inside = events.filter(
        (e) =>
          e.pid === t.pid &&
          e.tid === t.tid &&
          e.ph === 'X' &&
          e !== t &&
          e.ts >= t.ts &&
          e.ts + e.dur <= t.ts + t.dur &&
          (e.tdur ?? e.dur) > 2000,
      );
      const what = inside
        .sort((a, b) => (b.tdur ?? b.dur) - (a.tdur ?? a.dur))
        .slice(0, 3)
        .map((e) => `${e.name}${e.args?.data?.url ? ' ' + e.args.data.url.split('/').pop() : ''}`);
      return `${((t.tdur ?? t.dur) / 1000).toFixed(1)} ms: ${what.join(', ')}`;
    });
  return {
    cpu_max_ms: +Math.max(...cpu).toFixed(1),
    cpu_over_12ms: cpu.filter((x) => x > 12.5).length,
    tbt_x4_ms: Math.round(cpu.reduce((sum, x) => sum + Math.max(0, 4 * x - 50), 0)),
    cpu_total_ms: Math.round(cpu.reduce((a, b) => a + b, 0)),
    longest,
  };
}

const dep = new Deployment();
let browser;
try {
  dep.createDatabase();
  const servers = await serveBuilds(dep);
  const admin = await apiAs(servers[0][1].url, 'admin', dep.password);
  await seedBudgets(admin, 300);
  await seedDeadLetters(admin, 300);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: chromiumArgs,
  });
  const load = async (url, path) => {
    const context = await browser.newContext({
      baseURL: url,
      viewport: { width: 412, height: 823 },
    });
    await context.addCookies([{ name: 'cp_session', value: admin.token, url }]);
    const page = await context.newPage();
    try {
      await browser.startTracing(page, {
        screenshots: false,
        categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8'],
      });
      await page.goto(path);
      await page.locator(firstContent[path]).first().waitFor({ timeout: 60_000 });
      await page.waitForTimeout(1000);
      const buf = await browser.stopTracing();
      return startupTasks(JSON.parse(buf.toString()).traceEvents, url);
    } finally {
      await context.close();
    }
  };
  const rows = await alternate(
    servers,
    RUNS,
    PAGES,
    (server, path) => load(server.url, path),
    (row) => log(JSON.stringify(row)),
  );
  const summary = [];
  for (const path of PAGES)
    for (const [build] of servers) {
      const rs = rows.filter((r) => r.build === build && r.item === path && !r.error);
      summary.push({
        path,
        build,
        runs: rs.length,
        cpu_max_median: median(rs.map((r) => r.cpu_max_ms)),
        tbt_x4_median: median(rs.map((r) => r.tbt_x4_ms)),
        tbt_x4_all: rs.map((r) => r.tbt_x4_ms).join('/'),
        over_12_median: median(rs.map((r) => r.cpu_over_12ms)),
        cpu_total_median: median(rs.map((r) => r.cpu_total_ms)),
        load1_median: median(rs.map((r) => r.load1)),
      });
    }
  console.table(summary);
  console.log(JSON.stringify({ rows, summary }));
} finally {
  await browser?.close();
  await dep.close();
}
