// A real `controlplane serve` for browser tests and benchmarks: its own fresh database and its
// own NATS subject prefix and events stream on the services of .data/services.env, serving the
// built app from frontend/dist.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, credsAuthenticator } from 'nats';

const here = fileURLToPath(new URL('.', import.meta.url));
export const distDir = join(here, '..', 'dist');

const need = (name) => {
  const v = process.env[name];
  if (!v)
    throw new Error(`${name} is not set (source .data/services.env; scripts/frontend.sh e2e does)`);
  return v;
};

export class Deployment {
  constructor() {
    this.id = randomBytes(5).toString('hex');
    this.bin = need('CONTROLPLANE_BIN');
    this.adminUrl = need('DATABASE_URL');
    this.natsUrl = need('NATS_URL');
    this.db = `cp_e2e_${this.id}`;
    this.prefix = `e2e${this.id}`;
    this.workStream = `E2E_WORK_${this.id}`;
    this.password = randomBytes(9).toString('hex');
    this.secret = randomBytes(24).toString('hex');
    this.processes = new Set();
    this.logDir = mkdtempSync(join(tmpdir(), 'cp-e2e-'));
  }

  get databaseUrl() {
    const u = new URL(this.adminUrl);
    u.pathname = `/${this.db}`;
    return u.toString();
  }

  env(extra = {}) {
    return {
      ...process.env,
      APP_ENV: 'test',
      DATABASE_URL: this.databaseUrl,
      NATS_URL: this.natsUrl,
      NATS_SUBJECT_PREFIX: this.prefix,
      EVENTS_STREAM: `E2E_${this.id}`,
      DLQ_ADVISORY_STREAM: `E2E_DLQ_${this.id}`,
      // Dead letters are captured from this run's own work stream only (docs/dlq.md).
      DLQ_WATCH_STREAMS: this.workStream,
      // The sandbox's run reports are kept in a stream of this run's own (another run on the
      // same NATS has another subject prefix, and one stream name cannot serve both).
      SANDBOX_AUDIT_STREAM: `E2E_SBX_${this.id}`,
      JWT_SECRET: this.secret,
      ADMIN_PASSWORD: this.password,
      HOST: '127.0.0.1',
      UI_DIR: distDir,
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
      RATE_LIMITS: 'admin=1000000,operator=1000000,viewer=1000000',
      LOGIN_RATE_PER_MINUTE: '100000',
      // CI machines are shared and slow: reads after the page's own writes wait as in the
      // Rust tests (the default is 2 s).
      MIN_POSITION_WAIT_MS: '5000',
      WS_STATS_SECONDS: process.env.WS_STATS_SECONDS ?? '1',
      // The sandbox service of this run (startSandbox), or none.
      SANDBOX_URL: this.sandboxUrl ?? '-',
      ...extra,
    };
  }

  createDatabase() {
    execFileSync('psql', [this.adminUrl, '-qc', `CREATE DATABASE ${this.db}`]);
  }

  dropDatabase() {
    try {
      execFileSync('psql', [
        this.adminUrl,
        '-qc',
        `DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`,
      ]);
    } catch (e) {
      console.error('could not drop', this.db, e.message);
    }
  }

  addUser(username, role, password) {
    execFileSync(this.bin, ['user', 'add', '--username', username, '--role', role], {
      env: { ...this.env(), USER_PASSWORD: password },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }

  /**
   * A real sandbox service (SANDBOX_BIN) on the container engine at DOCKER_HOST, sharing this
   * run's JWT secret, for the control plane to forward runs to; call before `serve`. Resolves
   * false (and says why) when either is missing.
   */
  async startSandbox() {
    const bin = process.env.SANDBOX_BIN;
    if (!bin || !process.env.DOCKER_HOST) {
      this.sandboxSkip = 'SANDBOX_BIN and DOCKER_HOST are not set (scripts/sandbox-engine.sh up)';
      return false;
    }
    const port = await new Promise((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    const child = this.spawn(bin, [], {
      ...process.env,
      APP_ENV: 'test',
      JWT_SECRET: this.secret,
      HOST: '127.0.0.1',
      SANDBOX_PORT: String(port),
      SANDBOX_INSTANCE: `e2e-${this.id}`,
      NATS_URL: this.natsUrl,
      NATS_SUBJECT_PREFIX: this.prefix,
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    });
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 300; i++) {
      const r = await fetch(`${url}/healthz`).catch(() => null);
      if (r?.ok) {
        this.sandboxUrl = url;
        return true;
      }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`the sandbox did not become healthy:\n${child.log()}`);
  }

  /** A child process of this deployment (stopped by close()); `child.log()` is its output. */
  spawn(bin, args, env) {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.add(child);
    child.on('exit', () => this.processes.delete(child));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.log = () => out;
    return child;
  }

  /**
   * Starts one `serve` (port 0 = a free one) and resolves with its base URL once it listens;
   * `extra`: more environment (e.g. another `UI_DIR`).
   */
  async serve(port = 0, name = 'serve', extra = {}) {
    const log = join(this.logDir, `${name}-${Date.now()}.log`);
    const child = this.spawn(this.bin, ['serve'], this.env({ PORT: String(port), ...extra }));
    const url = await new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${name} did not start:\n${child.log()}`)),
        60_000,
      );
      const check = () => {
        const m = child.log().match(/http:\/\/[0-9.:]+/);
        if (m) {
          clearTimeout(t);
          resolve(m[0]);
        }
      };
      child.stdout.on('data', check);
      child.on('exit', (code) => reject(new Error(`${name} exited (${code}):\n${child.log()}`)));
    });
    // Ready: the events stream and the WebSocket consumer are up.
    for (let i = 0; i < 300; i++) {
      const r = await fetch(`${url}/readyz`).catch(() => null);
      if (r?.ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { url, child, log };
  }

  async stop(proc) {
    if (proc.child.exitCode !== null) return;
    const done = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill('SIGTERM');
    const t = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
  }

  /**
   * A NATS connection with a creds file: NATS runs with authentication (docs/nats-auth.md).
   * `inboxPrefix` is a service's own (`<prefix>.reply.<service>`), the only one it may read.
   */
  async natsWith(credsFile, inboxPrefix) {
    const authenticator = credsAuthenticator(readFileSync(credsFile));
    return connect({ servers: this.natsUrl, authenticator, ...(inboxPrefix && { inboxPrefix }) });
  }

  /** As the administrator (streams). */
  adminNats() {
    return this.natsWith(join(need('NATS_AUTH_DIR'), 'admin.creds'));
  }

  /**
   * As service `name` (registered for every tenant with `controlplane service add`); its
   * commands go to `subject(area, verb)`.
   */
  async serviceNats(name) {
    const creds = join(this.logDir, `${name}.creds`);
    execFileSync(this.bin, ['service', 'add', name, '--all-tenants', '--out', creds], {
      env: {
        ...this.env(),
        NATS_ACCOUNT_SEED_FILE: join(need('NATS_AUTH_DIR'), 'account.seed'),
      },
      stdio: 'ignore',
    });
    const nc = await this.natsWith(creds, `${this.prefix}.reply.${name}`);
    return { nc, subject: (area, verb) => `${this.prefix}.cmd.${name}.${area}.${verb}` };
  }

  /** This deployment's JetStream streams (left behind they would pile up on the shared NATS). */
  async dropStreams() {
    let nc;
    try {
      nc = await this.adminNats();
      const jsm = await nc.jetstreamManager();
      for (const name of [
        `E2E_${this.id}`,
        `E2E_${this.id}_ANCHORS`,
        `E2E_DLQ_${this.id}`,
        `E2E_SBX_${this.id}`,
        this.workStream,
      ]) {
        await jsm.streams.delete(name).catch(() => {});
      }
    } catch (e) {
      console.error('could not drop the streams of', this.id, e.message);
    } finally {
      await nc?.close();
    }
  }

  async close() {
    await Promise.all([...this.processes].map((child) => this.stop({ child })));
    this.dropDatabase();
    await this.dropStreams();
  }
}

/** A logged-in API client with a bearer token (the tests' second user, not the browser). */
export async function apiAs(url, username, password) {
  const r = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!r.ok) throw new Error(`login ${username}: ${r.status} ${await r.text()}`);
  const { token } = await r.json();
  const call = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    token,
    call,
    get: (p) => call('GET', p),
    put: (p, b) => call('PUT', p, b),
    post: (p, b) => call('POST', p, b),
  };
}

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

/** Runs `fn` over `items` with at most `n` at a time (the benchmarks' seeding). */
export async function pool(n, items, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

/** The median of numbers (the benchmarks' A/B summaries). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * One Lighthouse audit of `url` signed in with the session `token`: performance, accessibility
 * and best practices, with the timings the benchmarks report. `lighthouse` and `config` (the
 * desktop preset, or undefined for mobile) come from the caller's own npm install.
 */
export async function lighthouseAudit(lighthouse, { port, url, token, config }) {
  const r = await lighthouse(
    url,
    {
      port,
      output: 'json',
      logLevel: 'error',
      onlyCategories: ['performance', 'accessibility', 'best-practices'],
      extraHeaders: { Cookie: `cp_session=${token}` },
    },
    config,
  );
  const c = r.lhr.categories;
  const ms = (audit) => Math.round(r.lhr.audits[audit].numericValue);
  return {
    report: r.report,
    scores: {
      performance: Math.round(c.performance.score * 100),
      accessibility: Math.round(c.accessibility.score * 100),
      'best-practices': Math.round(c['best-practices'].score * 100),
      fcp_ms: ms('first-contentful-paint'),
      lcp_ms: ms('largest-contentful-paint'),
      tbt_ms: ms('total-blocking-time'),
      si_ms: ms('speed-index'),
      cls: +r.lhr.audits['cumulative-layout-shift'].numericValue.toFixed(3),
    },
  };
}

/**
 * The builds of the dashboard an A/B benchmark compares, each served by a `controlplane serve`
 * of its own on `dep`'s database: `AB_DIRS="before=/path/to/dist,after=/path/to/dist"` (default:
 * this checkout's build). The WebSocket's stats come every 5 s, as in the benchmarks. Pairs of
 * [name, server].
 */
export async function serveBuilds(dep) {
  process.env.WS_STATS_SECONDS ??= '5';
  const dirs = (process.env.AB_DIRS ?? `this=${distDir}`).split(',').map((s) => s.split('='));
  const servers = [];
  for (const [name, dir] of dirs)
    servers.push([name, await dep.serve(0, `ab-${name}`, { UI_DIR: dir })]);
  return servers;
}

/**
 * An A/B's measurements: in each run, for each item, every build once, the build that goes
 * first alternating between runs (so that the builds see the same machine load), each holding
 * /tmp/bench.lock. `measure(server, item, run)` gives a row's figures (a failure: its `error`);
 * `logRow(row)` is told each row. Rows of { build, item, run, load1, ...figures }.
 */
export async function alternate(servers, runs, items, measure, logRow = () => {}) {
  const rows = [];
  for (let run = 0; run < runs; run++)
    for (const item of items) {
      const order = run % 2 ? [...servers].reverse() : servers;
      for (const [build, server] of order) {
        const release = await benchLock();
        try {
          const load1 = +loadavg()[0].toFixed(2);
          const figures = await measure(server, item, run).catch((e) => ({
            error: String(e).slice(0, 300),
          }));
          const row = { build, item, run, load1, ...figures };
          rows.push(row);
          logRow(row);
        } finally {
          release();
        }
      }
    }
  return rows;
}

/** Holds /tmp/bench.lock (the shared machine's benchmark lock) until the returned function is called. */
export function benchLock() {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['/tmp/bench.lock', 'sh', '-c', 'echo locked; cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.on('error', reject);
    child.stdout.once('data', () => resolve(() => child.stdin.end()));
  });
}

/** `n` budgets t00000/p, t00001/p, … through the API (limits 1000, 1001, …). */
export const seedBudgets = (admin, n) =>
  pool(
    32,
    Array.from({ length: n }, (_, i) => i),
    (i) =>
      admin.put('/budget/limit', {
        tenant_id: `t${String(i).padStart(5, '0')}`,
        project_id: 'p',
        total_tokens: 1000 + i,
      }),
  );

/**
 * `n` SandboxRun events inserted with one SQL statement (`psql(sql)` runs it on the
 * deployment's database; the hash-chain trigger computes their hashes; no read model reads
 * them): a long audit log without ~100,000 API calls.
 */
export const seedSandboxRuns = (psql, n) =>
  psql(`INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        SELECT 'SandboxRun', 'bench-run-' || g, 1, 'SandboxCodeExecuted', '1',
               json_build_object('type', 'SandboxCodeExecuted', 'id', 'bench-run-' || g,
                 'at', to_char(now(), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'who', 'dev' || (g % 50),
                 'role', 'developer', 'language', 'python', 'code_sha256', repeat('ab', 32),
                 'code_bytes', 100 + g % 900, 'duration_ms', 100 + g % 500, 'exit_code', g % 3,
                 'timed_out', false, 'oom_killed', false, 'truncated', false,
                 'outcome', CASE WHEN g % 3 = 0 THEN 'ok' ELSE 'exit_nonzero' END,
                 'instance', 'bench'),
               json_build_object('user', 'sandbox:bench', 'via', 'nats')
          FROM generate_series(1, ${n}) g`);

/** `n` dead letters through `POST /dlq` (20 subjects, 3 errors; each an event and a read-model row). */
export const seedDeadLetters = (admin, n) =>
  pool(
    32,
    Array.from({ length: n }, (_, i) => i),
    (i) =>
      admin.post('/dlq', {
        original_subject: `bench.orders.${i % 20}`,
        payload: { order: i, items: [{ sku: `sku-${i % 97}`, qty: 1 + (i % 5) }] },
        error: `handler failed: ${['timeout', 'schema mismatch', '503 upstream'][i % 3]}`,
        attempts: 5,
        headers: { 'Trace-Id': `trace-${i}` },
      }),
  );

/**
 * Records the page's long tasks (the Long Tasks API: 50 ms or more of wall clock, which on a
 * shared machine includes time waiting for a core) from now on, each with what the Long
 * Animation Frames API says of the frame it fell in: the script time, the rendering time
 * (style, layout, paint) and the script that took longest. A long task whose frame had little
 * of either waited for a core. Read them with `longTasksOf`.
 */
export const watchLongTasks = (page) =>
  page.evaluate(() => {
    const w = window;
    w.__longTasks = [];
    w.__frames = [];
    w.__watchStart = performance.now();
    new PerformanceObserver((l) => w.__longTasks.push(...l.getEntries())).observe({
      type: 'longtask',
    });
    new PerformanceObserver((l) => w.__frames.push(...l.getEntries())).observe({
      type: 'long-animation-frame',
    });
  });

/** The long tasks since `watchLongTasks`: the longest, how many, and each with its frame. */
export const longTasksOf = (page) =>
  page.evaluate(() => {
    const w = window;
    const tasks = w.__longTasks.map((t) => {
      const end = t.startTime + t.duration;
      const frame = w.__frames.find(
        (f) => f.startTime <= t.startTime + 1 && f.startTime + f.duration >= end - 1,
      );
      const script = frame ? frame.scripts.reduce((s, x) => s + x.duration, 0) : null;
      const top = frame?.scripts.reduce((a, x) => (!a || x.duration > a.duration ? x : a), null);
      return {
        at_s: +((t.startTime - w.__watchStart) / 1000).toFixed(1),
        ms: Math.round(t.duration),
        frame_script_ms: script === null ? null : Math.round(script),
        frame_render_ms:
          frame && frame.renderStart
            ? Math.round(frame.startTime + frame.duration - frame.renderStart)
            : null,
        frame_top_script: top ? `${top.invoker} ${Math.round(top.duration)} ms` : null,
      };
    });
    return {
      longest_ms: tasks.length ? Math.max(...tasks.map((t) => t.ms)) : 0,
      over_50ms: tasks.length,
      tasks,
    };
  });
