// Browser benchmarks of the dashboard against a real `controlplane serve` (the e2e set-up:
// its own database and NATS names on the services of .data/services.env) with 10,000 budgets:
//   1. Lighthouse 12 (Debian's Chromium) on Dashboard and Governance, desktop and mobile presets;
//   2. an event committed -> visible on an open Governance page (wall clock, same machine);
//   3. the longest main-thread task while scrolling the 10,000-row Governance table (and a
//      Chrome trace of part of that scroll, results/scroll-trace.json, for profiling).
// Usage: bench/frontend/run.sh   (builds what it needs; prints the figures as JSON)
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import lighthouse from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';
import * as chromeLauncher from 'chrome-launcher';
import { chromium } from 'playwright-core';
import {
  apiAs,
  chromiumArgs,
  Deployment,
  lighthouseAudit,
  longTasksOf,
  seedBudgets,
  watchLongTasks,
} from '../../frontend/e2e/server.mjs';

process.env.WS_STATS_SECONDS ??= '5'; // the default of a deployment
const BUDGETS = Number(process.env.BENCH_BUDGETS ?? 10_000);
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 40);
const results = { budgets: BUDGETS };
const out = new URL('./results/', import.meta.url);
mkdirSync(out, { recursive: true });

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const dep = new Deployment();
let browser;
try {
  dep.createDatabase();
  const server = await dep.serve(0, 'bench');
  const admin = await apiAs(server.url, 'admin', dep.password);
  const t0 = Date.now();
  await seedBudgets(admin, BUDGETS);
  await admin.put('/budget/limit', {
    tenant_id: 'latency',
    project_id: 'p',
    total_tokens: 1_000_000_000,
  });
  console.error(`seeded ${BUDGETS} budgets in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // 1. Lighthouse, logged in by the session cookie.
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
        ['Dashboard', '/'],
        ['Governance', '/governance'],
      ]) {
        const { report, scores } = await lighthouseAudit(lighthouse, {
          port: chrome.port,
          url: server.url + path,
          token: admin.token,
          config,
        });
        results.lighthouse[`${name} (${preset})`] = scores;
        writeFileSync(new URL(`lighthouse-${name}-${preset}.json`, out), report);
      }
    }
  } finally {
    await chrome.kill();
  }

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
  const context = await browser.newContext({
    baseURL: server.url,
    viewport: { width: 1280, height: 900 },
  });
  await context.addCookies([{ name: 'cp_session', value: admin.token, url: server.url }]);
  const page = await context.newPage();

  // 3. Scrolling 10,000 rows: long tasks (>= 50 ms) and the longest frame.
  await page.goto('/governance');
  await page.locator('[data-budget]').first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1000);
  // Wheel scrolling as a person does it, fast (600 px a step), from the top to the end.
  const table = page.locator('[data-testid="status-table"]');
  const box = await table.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.evaluate(() => (window.__maxRows = 0));
  await watchLongTasks(page);
  const steps = Math.ceil((BUDGETS * 44) / 600) + 5;
  const t1 = Date.now();
  for (let i = 0; i < steps; i++) {
    await page.mouse.wheel(0, 600);
    if (i % 25 === 0)
      await page.evaluate(
        () =>
          (window.__maxRows = Math.max(
            window.__maxRows,
            document.querySelectorAll('[data-budget]').length,
          )),
      );
  }
  await page.waitForTimeout(500);
  const long = await longTasksOf(page);
  results.scroll = await page.evaluate(
    ({ steps, ms }) => {
      const el = document.querySelector('[data-testid="status-table"]');
      return {
        rows: Number(el.getAttribute('aria-rowcount')) - 1,
        wheel_steps: steps,
        seconds: +(ms / 1000).toFixed(1),
        reached_end: el.scrollTop + el.clientHeight >= el.scrollHeight - 2,
        max_rows_in_dom: window.__maxRows,
      };
    },
    { steps, ms: Date.now() - t1 },
  );
  results.scroll.longest_task_ms = long.longest_ms;
  results.scroll.long_tasks_over_50ms = long.over_50ms;
  if (long.tasks.length) results.scroll.long_tasks = long.tasks;

  // The same scroll again, from a fresh load (rows not read yet, as in the measured one) and
  // shorter, under a Chrome trace (not measured: tracing slows the page): what the long tasks
  // are made of. Open results/scroll-trace.json in DevTools' Performance panel.
  // BENCH_TRACE=0 skips it.
  if (process.env.BENCH_TRACE !== '0') {
    await page.reload();
    await page.locator('[data-budget]').first().waitFor({ timeout: 60_000 });
    await page.waitForTimeout(1000);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await browser.startTracing(page, {
      path: fileURLToPath(new URL('scroll-trace.json', out)),
      screenshots: false,
    });
    for (let i = 0; i < Math.min(steps, 150); i++) await page.mouse.wheel(0, 600);
    await page.waitForTimeout(500);
    await browser.stopTracing();
  }

  // 2. Event committed -> visible: a reservation on `latency/p`, its Reserved cell watched.
  await page.goto('/governance?q=latency');
  await page.locator('[data-budget="latency/p"]').waitFor();
  await page.locator('[data-live-state="live"]').waitFor();
  const samples = [];
  for (let i = 1; i <= LATENCY_SAMPLES; i++) {
    const want = String(i);
    const seen = page.evaluate(
      (want) =>
        new Promise((resolve) => {
          const cell = () =>
            document.querySelector('[data-budget="latency/p"] [role="cell"]:nth-child(4)');
          const check = () =>
            cell()?.textContent === want && (obs.disconnect(), resolve(Date.now()));
          const obs = new MutationObserver(check);
          obs.observe(document.body, { subtree: true, childList: true, characterData: true });
          check();
        }),
      want,
    );
    const sent = Date.now();
    await admin.post('/budget/request', {
      tenant_id: 'latency',
      project_id: 'p',
      task_id: `lat-${i}`,
      model: 'm',
      estimated_tokens: 1,
    });
    samples.push((await seen) - sent);
    await page.waitForTimeout(300);
  }
  results.event_to_visible_ms = {
    samples: samples.length,
    p50: pct(samples, 50),
    p95: pct(samples, 95),
    max: Math.max(...samples),
  };
  writeFileSync(new URL('results.json', out), JSON.stringify(results, null, 2));
  console.log(JSON.stringify(results, null, 2));
} finally {
  await browser?.close();
  await dep.close();
}
