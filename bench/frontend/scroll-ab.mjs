// The scroll only, A/B: two (or more) builds of the dashboard served side by side on one seeded
// database; each list wheel-scrolled from the top to its end on each build alternately (a fresh
// browser context each time, rows not read yet), so that every build sees the same machine
// load. Per scroll: the longest main-thread task and the tasks over 50 ms (the Long Tasks API,
// wall clock: they include time waiting for a core), and with AB_TRACE=1 a second, traced
// scroll of the same list: the renderer main thread's tasks' CPU time (the trace's `tdur`,
// which the machine's load barely changes), where that time goes (trace events by name), and
// the JS functions that took it (a CPU profile, self time). The whole run holds
// /tmp/bench.lock only while a browser scrolls.
//   AB_DIRS="main=/path/to/dist,this=/path/to/dist"   the builds (default: frontend/dist)
//   AB_RUNS=3  AB_PAGES=governance,audit,dlq  AB_TRACE=1  AB_STEPS=<wheel steps cap>
//   AB_PROFILE=0   a traced scroll without the sampling profiler (which doubles a task's CPU)
//   AB_BUDGETS=10000  AB_EVENTS=100000  AB_ENTRIES=10000   seeding (as the two benchmarks)
// Usage (from bench/frontend, after run.sh's npm ci): node scroll-ab.mjs
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import {
  alternate,
  apiAs,
  chromiumArgs,
  Deployment,
  longTasksOf,
  median,
  seedDeadLetters,
  seedBudgets,
  seedSandboxRuns,
  serveBuilds,
  watchLongTasks,
} from '../../frontend/e2e/server.mjs';

const RUNS = Number(process.env.AB_RUNS ?? 3);
const PAGES = (process.env.AB_PAGES ?? 'governance,audit,dlq').split(',');
const TRACE = process.env.AB_TRACE === '1';
const PROFILE = process.env.AB_PROFILE !== '0';
const STEPS = Number(process.env.AB_STEPS ?? Infinity);
const BUDGETS = PAGES.includes('governance') ? Number(process.env.AB_BUDGETS ?? 10_000) : 0;
const EVENTS = PAGES.includes('audit') ? Number(process.env.AB_EVENTS ?? 100_000) : 0;
const ENTRIES =
  PAGES.includes('dlq') || PAGES.includes('audit') ? Number(process.env.AB_ENTRIES ?? 10_000) : 0;
const out = new URL('./results/', import.meta.url);
mkdirSync(out, { recursive: true });
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

/** Each list: its path, table, row selector and how many rows it has. */
const lists = {
  governance: { path: '/governance', testId: 'status-table', row: '[data-budget]' },
  audit: { path: '/audit', testId: 'audit-table', row: '[data-position]' },
  dlq: { path: '/dlq', testId: 'dlq-table', row: '[data-entry]' },
};

/** The renderer main thread's tasks in a trace: CPU (tdur) and wall (dur), and time by event. */
function analyseTrace(events) {
  const mains = events.filter((e) => e.ph === 'M' && e.args?.name === 'CrRendererMain');
  const tasksOf = (m) =>
    events.filter(
      (e) => e.pid === m.pid && e.tid === m.tid && e.ph === 'X' && e.name === 'RunTask',
    );
  const main = mains
    .map((m) => ({ m, tasks: tasksOf(m) }))
    .sort((a, b) => b.tasks.length - a.tasks.length)[0];
  if (!main) return null;
  const tasks = main.tasks;
  const cpu = tasks.map((t) => (t.tdur ?? t.dur) / 1000);
  const wall = tasks.map((t) => t.dur / 1000);
  // Time by event name, children of the tasks (self time is not computed: nested events count
  // in their parents too; read it as "how long each kind took").
  const byName = {};
  for (const e of events)
    if (e.pid === main.m.pid && e.tid === main.m.tid && e.ph === 'X' && e.name !== 'RunTask')
      byName[e.name] = (byName[e.name] ?? 0) + (e.tdur ?? e.dur) / 1000;
  const top = Object.entries(byName)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`);
  const sorted = [...cpu].sort((a, b) => b - a);
  return {
    tasks: tasks.length,
    cpu_max_ms: +sorted[0].toFixed(1),
    cpu_top5_ms: sorted.slice(0, 5).map((x) => +x.toFixed(1)),
    cpu_over_16ms: cpu.filter((x) => x > 16).length,
    cpu_total_ms: Math.round(cpu.reduce((a, b) => a + b, 0)),
    wall_max_ms: +Math.max(...wall).toFixed(1),
    by_event_ms: top.join(', '),
  };
}

/** Self time by JS function in a CDP CPU profile (the top ones). */
function analyseProfile(profile) {
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id);
    const f = n.callFrame;
    const url = f.url.split('/').pop();
    const k = `${f.functionName || '(anon)'} ${url}:${f.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + (dt[i + 1] ?? 0) / 1000);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([k, v]) => `${v.toFixed(0)} ${k}`);
}

const dep = new Deployment();
let browser;
try {
  dep.createDatabase();
  const servers = await serveBuilds(dep);
  const admin = await apiAs(servers[0][1].url, 'admin', dep.password);
  const psql = (sql) => execFileSync('psql', [dep.databaseUrl, '-qAtc', sql]).toString().trim();
  // Seeding as the two benchmarks do: SandboxRun events by SQL, budgets and dead letters through
  // the API.
  const runs = Math.max(0, EVENTS - ENTRIES - BUDGETS);
  if (runs) seedSandboxRuns(psql, runs);
  await seedBudgets(admin, BUDGETS);
  await seedDeadLetters(admin, ENTRIES);
  for (let i = 0; ENTRIES; i++) {
    const { total } = await admin.get('/dlq?resolved=false&limit=1');
    if (total >= ENTRIES || i > 600) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const expected = {
    governance: BUDGETS,
    audit: Number(psql('SELECT count(*) FROM events')),
    dlq: ENTRIES,
  };
  log(`seeded: ${JSON.stringify(expected)}`);

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
  /** Wheel-scrolls a list to its end (every row loaded); `traced`: under a trace + profile. */
  const scroll = async (url, list, rows, traced) => {
    const context = await browser.newContext({
      baseURL: url,
      viewport: { width: 1280, height: 900 },
    });
    await context.addCookies([{ name: 'cp_session', value: admin.token, url }]);
    const page = await context.newPage();
    try {
      await page.goto(list.path);
      await page.locator(list.row).first().waitFor({ timeout: 60_000 });
      await page.waitForTimeout(1000);
      const box = await page.getByTestId(list.testId).boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await watchLongTasks(page);
      let cdp;
      if (traced) {
        cdp = await context.newCDPSession(page);
        if (PROFILE) await cdp.send('Profiler.enable');
        if (PROFILE) await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
        await browser.startTracing(page, {
          screenshots: false,
          categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8'],
        });
        if (PROFILE) await cdp.send('Profiler.start');
      }
      const state = () =>
        page.evaluate(
          ({ testId, row }) => {
            const el = document.querySelector(`[data-testid="${testId}"]`);
            let last = 0;
            for (const r of document.querySelectorAll(row))
              last = Math.max(last, Number(r.getAttribute('aria-rowindex')) - 1);
            return { atEnd: el.scrollTop + el.clientHeight >= el.scrollHeight - 2, loaded: last };
          },
          { testId: list.testId, row: list.row },
        );
      const start = Date.now();
      let steps = 0;
      for (;;) {
        await page.mouse.wheel(0, 600);
        steps++;
        if (steps >= STEPS) break;
        if (steps % 20) continue;
        // The pointer stays on the table (a banner above it may have moved it since).
        const b = await page.getByTestId(list.testId).boundingBox();
        await page.mouse.move(b.x + b.width / 2, b.y + Math.min(b.height / 2, 200));
        const s = await state();
        if (s.atEnd && s.loaded >= rows) break;
        if (s.atEnd) await page.waitForTimeout(50);
        if (Date.now() - start > 300_000) break;
      }
      await page.waitForTimeout(500);
      const s = await state();
      const long = await longTasksOf(page);
      // What the page keeps once every row is loaded: the collector's pauses grow with it.
      const heap = await context.newCDPSession(page);
      await heap.send('HeapProfiler.collectGarbage');
      const { usedSize } = await heap.send('Runtime.getHeapUsage');
      const r = {
        reached_end: s.atEnd && s.loaded >= rows,
        ...(s.atEnd && s.loaded >= rows ? {} : { end_state: s }),
        steps,
        seconds: +((Date.now() - start) / 1000).toFixed(1),
        longest_ms: long.longest_ms,
        over_50ms: long.over_50ms,
        heap_mb: +(usedSize / 1e6).toFixed(1),
        ...(long.tasks.length ? { long_tasks: long.tasks } : {}),
      };
      if (traced) {
        const profile = PROFILE ? (await cdp.send('Profiler.stop')).profile : null;
        const buf = await browser.stopTracing();
        const name = `scroll-ab-${url.replace(/\W/g, '')}-${list.testId}`;
        writeFileSync(new URL(`${name}.trace.json`, out), buf);
        r.trace = analyseTrace(JSON.parse(buf.toString()).traceEvents);
        if (profile) {
          writeFileSync(new URL(`${name}.cpuprofile`, out), JSON.stringify(profile));
          r.js_self_ms = analyseProfile(profile);
        }
      }
      return r;
    } finally {
      await context.close();
    }
  };

  const rows = await alternate(
    servers,
    RUNS,
    PAGES,
    async (server, name, run) => {
      const r = await scroll(server.url, lists[name], expected[name], false);
      if (TRACE && run === 0)
        r.traced = await scroll(server.url, lists[name], expected[name], true);
      return r;
    },
    (row) => log(JSON.stringify(row, null, row.traced ? 1 : 0)),
  );
  const summary = [];
  for (const name of PAGES)
    for (const [build] of servers) {
      const rs = rows.filter((r) => r.build === build && r.item === name);
      summary.push({
        page: name,
        build,
        runs: rs.length,
        longest_ms_median: median(rs.map((r) => r.longest_ms)),
        longest_all: rs.map((r) => r.longest_ms).join('/'),
        over_50_median: median(rs.map((r) => r.over_50ms)),
        over_50_all: rs.map((r) => r.over_50ms).join('/'),
        heap_mb_median: median(rs.map((r) => r.heap_mb)),
        all_reached_end: rs.every((r) => r.reached_end),
        load1_median: median(rs.map((r) => r.load1)),
      });
    }
  console.table(summary);
  console.log(JSON.stringify({ rows, summary }));
} finally {
  await browser?.close();
  await dep.close();
}
