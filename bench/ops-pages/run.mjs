// Browser benchmarks of the operator pages (issue 19's targets) against a real
// `controlplane serve` (the e2e set-up of frontend/e2e/server.mjs: its own database and NATS
// names on the services of .data/services.env, the built app from frontend/dist):
//   - Audit log with BENCH_EVENTS (100,000) events and Dead letters with BENCH_ENTRIES
//     (10,000) open entries: time from navigation to the first rows (cold: a fresh browser
//     context each time), and the longest main-thread task while wheel-scrolling the whole
//     list (server-paged as the reader scrolls: 500 events / 200 entries a page);
//   - Lighthouse 12 (desktop and mobile presets) on both pages;
//   - the streamed audit verify over the whole log (how long, how many progress lines), and
//     `GET /sandbox/runs` for one developer among all the seeded runs (its partial index).
// Seeding: the dead letters through `POST /dlq` (each an event and a read-model row); the rest
// of the events as `SandboxRun` events inserted with one SQL statement (the hash-chain trigger
// computes their hashes; no read model reads them), since ~90,000 API calls would measure the
// seeding, not the pages.
// Every label in the results states the sizes measured (counted in the database and the read
// model), not the ones asked for.
// Usage: bench/ops-pages/run.sh   (prints the figures as JSON; raw reports in results/)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import lighthouse from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';
import * as chromeLauncher from 'chrome-launcher';
import { chromium } from 'playwright-core';
import {
  apiAs,
  chromiumArgs,
  Deployment,
  distDir,
  lighthouseAudit,
  longTasksOf,
  seedDeadLetters,
  seedSandboxRuns,
  watchLongTasks,
} from '../../frontend/e2e/server.mjs';

process.env.WS_STATS_SECONDS ??= '5'; // a deployment's default
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 10_000);
const LOADS = Number(process.env.BENCH_LOADS ?? 5);
const SKIP_LIGHTHOUSE = process.env.BENCH_SKIP_LIGHTHOUSE === '1';
// BENCH_ONLY=first-rows: the seeding and the first rows only (no scroll, verify, Lighthouse).
const FIRST_ROWS_ONLY = process.env.BENCH_ONLY === 'first-rows';
// Another build of the dashboard (a dist folder, e.g. main's) served by a second `serve` on the
// same database: each first-rows load is measured on both, alternately, under the same load.
const COMPARE_UI_DIR = process.env.BENCH_COMPARE_UI_DIR;
const load = () => loadavg().map((x) => +x.toFixed(2));
const results = {
  asked: { events: EVENTS, dlq_entries: ENTRIES },
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    controlplane: process.env.CONTROLPLANE_BIN,
    load_average_start: load(),
    started: new Date().toISOString(),
  },
  first_rows_loads: LOADS,
};
const out = new URL('./results/', import.meta.url);
mkdirSync(out, { recursive: true });
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const summary = (xs) => ({
  samples: xs.length,
  p50: pct(xs, 50),
  max: Math.max(...xs),
  min: Math.min(...xs),
});

const dep = new Deployment();
let browser;
try {
  dep.createDatabase();
  const server = await dep.serve(0, 'bench');
  const compare = COMPARE_UI_DIR
    ? await dep.serve(0, 'bench-compare', { UI_DIR: COMPARE_UI_DIR })
    : null;
  const admin = await apiAs(server.url, 'admin', dep.password);
  const psql = (sql) => execFileSync('psql', [dep.databaseUrl, '-qAtc', sql]).toString().trim();
  const count = (where = 'true') => Number(psql(`SELECT count(*) FROM events WHERE ${where}`));

  // Seeding. SandboxRun events first, so that a search for the dead letters' events scans
  // past them (the audit list reads by global position).
  let t0 = Date.now();
  const runs = Math.max(0, EVENTS - ENTRIES - count());
  seedSandboxRuns(psql, runs);
  log(`inserted ${runs} SandboxRun events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  results.seed_seconds_runs = +((Date.now() - t0) / 1000).toFixed(1);
  t0 = Date.now();
  await seedDeadLetters(admin, ENTRIES);
  log(`captured ${ENTRIES} dead letters in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  results.seed_seconds_dlq = +((Date.now() - t0) / 1000).toFixed(1);
  // The read model is fed from JetStream, behind the publisher: wait until it has them all.
  t0 = Date.now();
  let open = 0;
  for (let i = 0; ; i++) {
    ({ total: open } = await admin.get('/dlq?resolved=false&limit=1'));
    if (open >= ENTRIES) break;
    if (i > 600) throw new Error(`only ${open} entries projected`);
    await new Promise((r) => setTimeout(r, 500));
  }
  results.seed_seconds_projected = +((Date.now() - t0) / 1000).toFixed(1);
  // What the pages show: every figure below is labelled with these, as counted.
  const n = (x) => x.toLocaleString('en');
  results.events = count();
  results.sandbox_run_events = count(`aggregate_type = 'SandboxRun'`);
  results.dlq_events = count(`aggregate_type = 'DlqEntry'`);
  results.dlq_open_entries = open;
  const before = count(
    `global_position < (SELECT min(global_position) FROM events WHERE aggregate_type = 'DlqEntry')`,
  );
  log(`${n(results.events)} events in the log, ${n(open)} open dead letters`);

  // First rows, cold: a fresh context (no cache) per load; navigation start → a row visible.
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: chromiumArgs,
  });
  const newPage = async (url = server.url) => {
    const context = await browser.newContext({
      baseURL: url,
      viewport: { width: 1280, height: 900 },
    });
    await context.addCookies([{ name: 'cp_session', value: admin.token, url }]);
    return { context, page: await context.newPage() };
  };
  // `listRequest`: the URL of the page's list request (its timing is reported apart).
  const firstRowsOf = async (path, rowSelector, listRequest) => {
    if (!compare) return firstRows(path, rowSelector, listRequest, [server.url]);
    const [a, b] = await firstRows(path, rowSelector, listRequest, [server.url, compare.url]);
    return { [`this build (${distDir})`]: a, [COMPARE_UI_DIR]: b };
  };
  // One series per URL in `urls`, their loads alternating.
  const firstRows = async (path, rowSelector, listRequest, urls) => {
    const series = urls.map(() => ({ times: [], api: [], apiStart: [] }));
    for (let i = 0; i < LOADS * urls.length; i++) {
      const { times, api, apiStart } = series[i % urls.length];
      const { context, page } = await newPage(urls[i % urls.length]);
      // The browser's own clock: navigation start → the first row in the DOM.
      await context.addInitScript((sel) => {
        new MutationObserver((_, obs) => {
          if (document.querySelector(sel)) {
            window.__firstRow = performance.now();
            obs.disconnect();
          }
        }).observe(document, { subtree: true, childList: true });
      }, rowSelector);
      await page.goto(path, { waitUntil: 'commit' });
      await page.locator(rowSelector).first().waitFor({ timeout: 60_000 });
      const t = await page.evaluate((source) => {
        // The list's own request: when the app sent it (after the document, the scripts and
        // GET /auth/me) and how long the server took to answer it.
        const list = performance
          .getEntriesByType('resource')
          .find((e) => new RegExp(source).test(new URL(e.name).pathname + new URL(e.name).search));
        return {
          first: Math.round(window.__firstRow),
          start: list ? Math.round(list.requestStart) : null,
          api: list ? Math.round(list.responseEnd - list.requestStart) : null,
        };
      }, listRequest.source);
      times.push(t.first);
      api.push(t.api);
      apiStart.push(t.start);
      await context.close();
    }
    const out = series.map(({ times, api, apiStart }) => ({
      ...summary(times),
      list_request_sent_at_ms_p50: pct(apiStart, 50),
      list_request_ms_p50: pct(api, 50),
    }));
    return urls.length === 1 ? out[0] : out;
  };
  results.first_rows_ms = {
    [`Audit log, ${n(results.events)} events`]: await firstRowsOf(
      '/audit',
      '[data-position]',
      /^\/audit\/events\?/,
    ),
    [`Audit log, search aggregate_type=DlqEntry (${n(results.dlq_events)} of ${n(results.events)} events, the first after ${n(before)} others)`]:
      await firstRowsOf('/audit?aggregate_type=DlqEntry', '[data-position]', /^\/audit\/events\?/),
    [`Dead letters, ${n(open)} open`]: await firstRowsOf('/dlq', '[data-entry]', /^\/dlq\?/),
    [`Dead letters, ${n(open)} open, grouped by failure`]: await firstRowsOf(
      '/dlq?view=groups',
      '[data-group]',
      /^\/dlq\/groups\b/,
    ),
  };
  log('first rows', JSON.stringify(results.first_rows_ms));

  // Scrolling the whole list with the mouse wheel (600 px a step, as fast as a person
  // flicks), loading pages as it goes, until every row is loaded and in view at the end:
  // long tasks (>= 50 ms, the Long Tasks API: none means the longest was under 50 ms) and
  // rows in the DOM. `expected`: the rows the list has (counted before).
  const scrollAll = async (path, testId, rowSelector, expected, maxSeconds) => {
    const { context, page } = await newPage();
    await page.goto(path);
    await page.locator(rowSelector).first().waitFor({ timeout: 60_000 });
    await page.waitForTimeout(1000);
    const table = page.getByTestId(testId);
    const box = await table.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.evaluate(() => (window.__maxRows = 0));
    await watchLongTasks(page);
    // Rows loaded: the highest row index rendered (at the end, the last row loaded).
    const state = () =>
      page.evaluate(
        ({ testId, rowSelector }) => {
          const el = document.querySelector(`[data-testid="${testId}"]`);
          const rows = document.querySelectorAll(rowSelector);
          window.__maxRows = Math.max(window.__maxRows, rows.length);
          let last = 0;
          for (const r of rows) last = Math.max(last, Number(r.getAttribute('aria-rowindex')) - 1);
          return { atEnd: el.scrollTop + el.clientHeight >= el.scrollHeight - 2, loaded: last };
        },
        { testId, rowSelector },
      );
    const start = Date.now();
    let steps = 0;
    let s = await state();
    let lastLoaded = 0;
    let lastGrowth = Date.now();
    let stalled = false;
    for (;;) {
      await page.mouse.wheel(0, 600);
      steps++;
      if (steps % 20 !== 0) continue;
      s = await state();
      if (s.atEnd && s.loaded >= expected) break;
      if (s.loaded > lastLoaded) {
        lastLoaded = s.loaded;
        lastGrowth = Date.now();
      } else if (Date.now() - lastGrowth > 15_000) {
        stalled = true; // nothing more arrived for 15 s
        break;
      }
      if (s.atEnd) await page.waitForTimeout(50); // at the end of what is loaded: next page
      if (Date.now() - start > maxSeconds * 1000) break;
    }
    const seconds = (Date.now() - start) / 1000;
    await page.waitForTimeout(500);
    const long = await longTasksOf(page);
    const r = {
      longest_task_ms: long.longest_ms,
      long_tasks_over_50ms: long.over_50ms,
      max_rows_in_dom: await page.evaluate(() => window.__maxRows),
      ...(long.tasks.length ? { long_tasks: long.tasks } : {}),
    };
    await context.close();
    return {
      rows_expected: expected,
      rows_loaded: s.loaded,
      reached_end: s.atEnd && s.loaded >= expected,
      stalled,
      ...r,
      wheel_steps: steps,
      seconds: +seconds.toFixed(1),
    };
  };
  if (!FIRST_ROWS_ONLY) {
    results.scroll = {
      [`Dead letters, ${n(open)} open entries`]: await scrollAll(
        '/dlq',
        'dlq-table',
        '[data-entry]',
        open,
        600,
      ),
    };
    log('dlq scroll', JSON.stringify(results.scroll));
    const events = count();
    results.scroll[`Audit log, ${n(events)} events`] = await scrollAll(
      '/audit',
      'audit-table',
      '[data-position]',
      events,
      1200,
    );
    log('audit scroll', JSON.stringify(results.scroll));

    // The streamed verify over the whole log, through the API (what the page reads).
    t0 = Date.now();
    const verify = await fetch(`${server.url}/audit/verify/stream`, {
      headers: { authorization: `Bearer ${admin.token}` },
    });
    const lines = (await verify.text()).trim().split('\n').map(JSON.parse);
    const last = lines.at(-1);
    results.verify_stream = {
      seconds: +((Date.now() - t0) / 1000).toFixed(1),
      progress_lines: lines.length - 1,
      phases: [...new Set(lines.filter((l) => l.type === 'progress').map((l) => l.phase))],
      ok: last.type === 'result' && last.report.ok,
      events_checked: last.report?.events_checked,
    };
    log('verify', JSON.stringify(results.verify_stream));

    // A developer's own runs among all the seeded ones (one in 50 is theirs): the partial index.
    const dev = 'dev7';
    dep.addUser(dev, 'developer', 'bench-password-1');
    const devApi = await apiAs(server.url, dev, 'bench-password-1');
    const runTimes = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      const r = await devApi.get('/sandbox/runs?limit=20');
      runTimes.push(Math.round((performance.now() - s) * 10) / 10);
      if (r.runs.length !== 20) throw new Error(`expected 20 runs, got ${r.runs.length}`);
    }
    results.sandbox_runs_ms = {
      label: `GET /sandbox/runs?limit=20 as ${dev}: ${n(count(`aggregate_type = 'SandboxRun' AND payload ->> 'who' = '${dev}'`))} of ${n(results.sandbox_run_events)} SandboxRun events theirs`,
      ...summary(runTimes),
    };
  }

  // Lighthouse, logged in by the session cookie.
  if (!SKIP_LIGHTHOUSE && !FIRST_ROWS_ONLY) {
    results.lighthouse = {};
    const chrome = await chromeLauncher.launch({
      chromePath: '/usr/bin/chromium',
      chromeFlags: chromiumArgs,
    });
    try {
      for (const [preset, config] of [
        ['desktop', desktopConfig],
        ['mobile', undefined],
      ]) {
        for (const [name, path] of [
          ['Dead letters', '/dlq'],
          ['Audit log', '/audit'],
        ]) {
          const { report, scores } = await lighthouseAudit(lighthouse, {
            port: chrome.port,
            url: server.url + path,
            token: admin.token,
            config,
          });
          results.lighthouse[`${name} (${preset})`] = scores;
          writeFileSync(
            new URL(`lighthouse-${name.replace(' ', '-')}-${preset}.json`, out),
            report,
          );
          log(
            'lighthouse',
            name,
            preset,
            JSON.stringify(results.lighthouse[`${name} (${preset})`]),
          );
        }
      }
    } finally {
      await chrome.kill();
    }
  }

  // The JS budget of the build (Monaco on the sandbox route only).
  results.js_budget_kb = JSON.parse(readFileSync(`${distDir}/budget.json`, 'utf8'));
  results.machine.chromium = browser.version();
  results.machine.load_average_end = load();
  results.machine.ended = new Date().toISOString();
  writeFileSync(new URL('results.json', out), JSON.stringify(results, null, 2));
  console.log(JSON.stringify(results, null, 2));
} finally {
  await browser?.close();
  await dep.close();
}
