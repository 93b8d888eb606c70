// Lighthouse only, A/B: two (or more) builds of the dashboard served side by side on one seeded
// database, each page measured on each build alternately, so that every build sees the same
// machine load; medians per build and page. Each Lighthouse run takes /tmp/bench.lock (the
// shared machine's benchmark lock) for itself only.
//   AB_DIRS="before=/path/to/dist,after=/path/to/dist"   the builds (default: frontend/dist)
//   AB_RUNS=3  AB_PRESETS=mobile,desktop  AB_PAGES=/,/governance,/dlq,/audit
//   AB_BUDGETS=2000  AB_ENTRIES=300   seeding (the first view reads 100 budgets, 200 entries)
// Usage (from bench/frontend, after run.sh's npm ci): node ab.mjs
import { loadavg } from 'node:os';
import lighthouse from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';
import * as chromeLauncher from 'chrome-launcher';
import {
  apiAs,
  benchLock as lock,
  chromiumArgs,
  Deployment,
  lighthouseAudit,
  median,
  pool,
  serveBuilds,
} from '../../frontend/e2e/server.mjs';

const RUNS = Number(process.env.AB_RUNS ?? 3);
const PRESETS = (process.env.AB_PRESETS ?? 'mobile').split(',');
const PAGES = (process.env.AB_PAGES ?? '/,/governance,/dlq,/audit').split(',');
const BUDGETS = Number(process.env.AB_BUDGETS ?? 2000);
const ENTRIES = Number(process.env.AB_ENTRIES ?? 300);
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

const dep = new Deployment();
try {
  dep.createDatabase();
  const servers = await serveBuilds(dep);
  const admin = await apiAs(servers[0][1].url, 'admin', dep.password);
  await pool(32, Array.from({ length: BUDGETS }, (_, i) => i), (i) =>
    admin.put('/budget/limit', {
      tenant_id: `t${String(i).padStart(5, '0')}`,
      project_id: 'p',
      total_tokens: 1000 + i,
    }),
  );
  await pool(32, Array.from({ length: ENTRIES }, (_, i) => i), (i) =>
    admin.post('/dlq', {
      original_subject: `bench.orders.${i % 20}`,
      payload: { order: i },
      error: `handler failed: ${['timeout', 'schema mismatch', '503 upstream'][i % 3]}`,
      attempts: 5,
    }),
  );
  for (let i = 0; ; i++) {
    const { total } = await admin.get('/dlq?resolved=false&limit=1');
    if (total >= ENTRIES || i > 120) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  log(`seeded ${BUDGETS} budgets, ${ENTRIES} dead letters`);

  const rows = [];
  for (let run = 0; run < RUNS; run++) {
    for (const preset of PRESETS) {
      for (const path of PAGES) {
        // Alternate which build goes first.
        const order = run % 2 ? [...servers].reverse() : servers;
        for (const [name, server] of order) {
          const release = await lock();
          const load = loadavg()[0];
          const chrome = await chromeLauncher.launch({
            chromePath: '/usr/bin/chromium',
            chromeFlags: chromiumArgs,
          });
          try {
            const { report, scores } = await lighthouseAudit(lighthouse, {
              port: chrome.port,
              url: server.url + path,
              token: admin.token,
              config: preset === 'desktop' ? desktopConfig : undefined,
            });
            const row = {
              build: name,
              preset,
              path,
              perf: scores.performance,
              a11y: scores.accessibility,
              bp: scores['best-practices'],
              fcp: scores.fcp_ms,
              lcp: scores.lcp_ms,
              tbt: scores.tbt_ms,
              si: scores.si_ms,
              cls: scores.cls,
              load1: +load.toFixed(2),
            };
            rows.push(row);
            log(JSON.stringify(row));
            if (process.env.AB_SAVE) {
              const { writeFileSync, mkdirSync } = await import('node:fs');
              mkdirSync(process.env.AB_SAVE, { recursive: true });
              writeFileSync(
                `${process.env.AB_SAVE}/${name}-${preset}-${path.replace(/\W/g, '_') || 'root'}-${run}.json`,
                report,
              );
            }
          } finally {
            await chrome.kill();
            release();
          }
        }
      }
    }
  }
  const summary = [];
  for (const preset of PRESETS)
    for (const path of PAGES)
      for (const [name] of servers) {
        const rs = rows.filter((r) => r.build === name && r.preset === preset && r.path === path);
        const m = (k) => median(rs.map((r) => r[k]));
        summary.push({
          preset,
          path,
          build: name,
          runs: rs.length,
          perf: m('perf'),
          perf_all: rs.map((r) => r.perf).join('/'),
          a11y: Math.min(...rs.map((r) => r.a11y)),
          bp: Math.min(...rs.map((r) => r.bp)),
          fcp: m('fcp'),
          lcp: m('lcp'),
          tbt: m('tbt'),
          si: m('si'),
          cls: m('cls'),
          load1: m('load1'),
        });
      }
  console.table(summary);
  console.log(JSON.stringify({ rows, summary }));
} finally {
  await dep.close();
}
