// End-to-end: the built app in Debian's Chromium (playwright-core) against a real
// `controlplane serve` on real PostgreSQL and NATS. Screenshots of every page (light, dark,
// 390 px) go to frontend/e2e-artifacts/, with a trace of any failing test.
//   CONTROLPLANE_BIN=… DATABASE_URL=… NATS_URL=… node e2e/run.mjs   (scripts/frontend.sh e2e)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { StringCodec } from 'nats';
import { apiAs, chromiumArgs, Deployment } from './server.mjs';

const artifacts = fileURLToPath(new URL('../e2e-artifacts/', import.meta.url));
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });

const dep = new Deployment();
let server; // the serve process the browser talks to
let admin; // API client of the admin (bearer token)
let browser;
const VIEWER = { username: 'viewer1', password: 'viewer-password-1' };
const OPERATOR = { username: 'ops1', password: 'operator-password-1' };

before(async () => {
  dep.createDatabase();
  await dep.startSandbox();
  server = await dep.serve(0, 'serve-a');
  dep.addUser(VIEWER.username, 'viewer', VIEWER.password);
  dep.addUser(OPERATOR.username, 'operator', OPERATOR.password);
  admin = await apiAs(server.url, 'admin', dep.password);
  await admin.put('/budget/limit', { tenant_id: 'acme', project_id: 'web', total_tokens: 100000 });
  await admin.put('/budget/limit', { tenant_id: 'acme', project_id: 'batch', total_tokens: 1000 });
  await admin.post('/budget/request', {
    tenant_id: 'acme',
    project_id: 'batch',
    task_id: 'big',
    model: 'gpt',
    estimated_tokens: 900,
  });
  // Lowered below what is reserved: exhausted.
  await admin.put('/budget/limit', { tenant_id: 'acme', project_id: 'batch', total_tokens: 500 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: chromiumArgs,
  });
});

after(async () => {
  await browser?.close();
  await dep.close();
});

/** A fresh context per test; a trace is kept when the test fails. */
async function withPage(name, fn, { width = 1280, height = 900, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({
    baseURL: server.url,
    viewport: { width, height },
    colorScheme,
  });
  await context.tracing.start({ screenshots: true, snapshots: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  try {
    await fn(page, context);
    assert.deepEqual(errors.map(String), [], 'no uncaught error in the page');
    await context.tracing.stop();
  } catch (e) {
    await page
      .screenshot({ path: `${artifacts}FAILED-${name}.png`, fullPage: true })
      .catch(() => {});
    await context.tracing.stop({ path: `${artifacts}trace-${name}.zip` }).catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

async function login(page, { username, password }) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

const pages = [
  { path: '/', heading: 'Dashboard' },
  { path: '/governance', heading: 'Governance' },
  { path: '/budget?tenant=acme&project=web', heading: 'Budget', name: 'budget' },
  { path: '/dlq', heading: 'Dead letters' },
  { path: '/breakers', heading: 'Circuit breakers' },
  { path: '/sandbox', heading: 'Sandbox' },
  { path: '/audit', heading: 'Audit log' },
  { path: '/users', heading: 'Users' },
];
const slug = (p) => p.name ?? (p.path === '/' ? 'dashboard' : p.path.slice(1));

async function settle(page) {
  await page.waitForLoadState('networkidle').catch(() => {});
  await page
    .waitForFunction(
      () => !document.querySelector('[aria-label="Loading"], [aria-label="Loading page"]'),
      null,
      { timeout: 10_000 },
    )
    .catch(() => {});
}

/**
 * The page is no wider than the viewport (no horizontal scrollbar); when it is, the message
 * names the innermost elements that reach past the right edge.
 */
async function assertFits(page, label) {
  const r = await page.evaluate(() => {
    const de = document.documentElement;
    const vw = de.clientWidth;
    const past = (el) => el.getBoundingClientRect().right > vw + 0.5;
    const culprits = [];
    for (const el of document.querySelectorAll('body *')) {
      if (culprits.length >= 5) break;
      if (past(el) && ![...el.children].some(past)) {
        const b = el.getBoundingClientRect();
        culprits.push(
          `<${el.tagName.toLowerCase()} class="${String(el.className).slice(0, 60)}"> ` +
            `${Math.round(b.left)}–${Math.round(b.right)} px: ` +
            `“${(el.textContent ?? '').slice(0, 40)}”`,
        );
      }
    }
    return { over: de.scrollWidth - vw, vw, culprits };
  });
  assert.ok(
    r.over <= 0,
    `${label}: the page is ${r.over}px wider than the ${r.vw}px viewport; past the edge: ` +
      r.culprits.join('; '),
  );
}

async function axe(page, label) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.nodes
          .slice(0, 3)
          .map((n) => n.target.join(' '))
          .join(' | ')}`,
    ),
    [],
    `axe on ${label}`,
  );
}

test('the server serves the app and its API types are the checked-in ones', async () => {
  const html = await fetch(`${server.url}/governance`, { headers: { accept: 'text/html' } });
  assert.equal(html.status, 200);
  assert.match(await html.text(), /<div id="root">/);
  execFileSync(
    'node',
    [fileURLToPath(new URL('../scripts/gen-api.mjs', import.meta.url)), server.url, '--check'],
    { stdio: 'inherit' },
  );
});

test('admin logs in and sees every page, in light and dark mode, accessible', async () => {
  for (const colorScheme of ['light', 'dark']) {
    await withPage(
      `admin-${colorScheme}`,
      async (page) => {
        await page.goto('/login');
        await page.getByRole('button', { name: 'Sign in' }).waitFor();
        await page.screenshot({ path: `${artifacts}login-${colorScheme}.png` });
        await axe(page, `/login (${colorScheme})`);
        await login(page, { username: 'admin', password: dep.password });
        const nav = page.getByRole('navigation', { name: 'Pages' });
        for (const p of pages) {
          await nav.getByRole('link', { name: p.heading }).waitFor();
          await page.goto(p.path);
          await page.getByRole('heading', { level: 1, name: p.heading }).waitFor();
          await settle(page);
          await page.screenshot({
            path: `${artifacts}${slug(p)}-${colorScheme}.png`,
            fullPage: true,
          });
          await axe(page, `${p.path} (${colorScheme})`);
        }
      },
      { colorScheme },
    );
  }
});

test('at 390 px every page fits the width', async () => {
  await withPage(
    'narrow',
    async (page) => {
      await login(page, { username: 'admin', password: dep.password });
      for (const p of pages) {
        await page.goto(p.path);
        await page.getByRole('heading', { level: 1, name: p.heading }).waitFor();
        await settle(page);
        const overflow = await page.evaluate(
          () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
        );
        await page.screenshot({ path: `${artifacts}${slug(p)}-390.png`, fullPage: true });
        assert.ok(overflow <= 0, `${p.path} overflows by ${overflow}px at 390 px`);
      }
    },
    { width: 390, height: 844 },
  );
});

test('at 390 px the menu opens the navigation of the role, which closes on a choice', async () => {
  for (const [who, user, shown, hidden] of [
    ['admin', { username: 'admin', password: dep.password }, pages.map((p) => p.heading), []],
    [
      'viewer',
      VIEWER,
      ['Dashboard', 'Governance', 'Budget', 'Circuit breakers'],
      ['Dead letters', 'Sandbox', 'Audit log', 'Users'],
    ],
  ]) {
    await withPage(
      `narrow-nav-${who}`,
      async (page) => {
        await login(page, user);
        const nav = page.getByRole('navigation', { name: 'Pages' });
        assert.equal(await nav.count(), 0, 'no navigation on screen until the menu opens');
        const menu = page.getByRole('button', { name: 'Open navigation' });
        await menu.click();
        for (const name of shown) await nav.getByRole('link', { name, exact: true }).waitFor();
        for (const name of hidden)
          assert.equal(await nav.getByRole('link', { name }).count(), 0, `${who}: no ${name}`);
        await page.screenshot({ path: `${artifacts}nav-${who}-390.png` });
        if (who === 'admin') await axe(page, 'the navigation drawer (390 px)');
        // Escape closes it and gives the focus back to the menu button; so does a click on
        // the backdrop (right of the panel); a page chosen closes it.
        await page.keyboard.press('Escape');
        await nav.waitFor({ state: 'hidden' });
        assert.ok(await menu.evaluate((b) => b === document.activeElement), 'focus on the menu');
        await menu.click();
        await nav.waitFor();
        await page.mouse.click(370, 600);
        await nav.waitFor({ state: 'hidden' });
        await menu.click();
        await nav.getByRole('link', { name: 'Governance' }).click();
        await page.getByRole('heading', { level: 1, name: 'Governance' }).waitFor();
        await nav.waitFor({ state: 'hidden' });
        assert.match(page.url(), /\/governance$/);
      },
      { width: 390, height: 844 },
    );
  }
});

test('a viewer sees no write action and gets the 403 page for admin pages', async () => {
  await withPage('viewer', async (page) => {
    await login(page, VIEWER);
    const nav = page.getByRole('navigation', { name: 'Pages' });
    await nav.getByRole('link', { name: 'Budget' }).waitFor();
    assert.equal(
      await nav.getByRole('link', { name: 'Audit log' }).count(),
      0,
      'no audit link for a viewer',
    );
    await page.goto('/budget?tenant=acme&project=batch');
    await page.getByRole('heading', { level: 1, name: 'Budget' }).waitFor();
    await page.locator('[data-task="big"]').waitFor();
    for (const name of ['Reserve', 'Set limit', 'Commit big', 'Release big']) {
      const button = page.getByRole('button', { name, exact: true });
      assert.equal(await button.isDisabled(), true, `${name} is disabled for a viewer`);
    }
    const missing = await page
      .locator('[data-missing-permission]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-missing-permission')));
    assert.ok(
      missing.includes('write:budget') && missing.includes('admin:budget'),
      `missing permissions named: ${missing}`,
    );
    await page.locator('[data-missing-permission="write:budget"]').first().hover();
    await page.getByRole('tooltip', { name: 'Needs the write:budget permission' }).waitFor();
    await page.screenshot({ path: `${artifacts}viewer-budget.png`, fullPage: true });
    await page.goto('/audit');
    await page.getByRole('heading', { name: /403/ }).waitFor();
    assert.match(await page.textContent('main'), /read:audit/);
    await page.screenshot({ path: `${artifacts}viewer-403.png` });
  });
});

test('reservations from the form and over NATS both appear without a reload', async () => {
  await withPage('reserve', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/budget?tenant=acme&project=web');
    await page.getByRole('heading', { name: 'acme / web' }).waitFor();
    await page.evaluate(() => (window.__marker = 'no reload'));
    // Validation first: zod in the browser.
    await page.getByRole('button', { name: 'Reserve', exact: true }).click();
    await page.getByText('Required').first().waitFor();
    const form = page.getByRole('form', { name: 'Reserve tokens' });
    await form.getByLabel('Task id').fill('form-task');
    await form.getByLabel('Model').fill('gpt-4o');
    await form.getByLabel('Estimated tokens').fill('1200');
    await form.getByRole('button', { name: 'Reserve', exact: true }).click();
    await page.locator('[data-task="form-task"]').waitFor();
    // The API's 400 at the field it names.
    await form.getByLabel('Task id').fill('x'.repeat(65));
    await form.getByLabel('Estimated tokens').fill('5');
    await form.getByRole('button', { name: 'Reserve', exact: true }).click();
    await page.getByText('At most 64 characters').waitFor();

    const { nc, subject } = await dep.serviceNats('e2e-worker');
    const sc = StringCodec();
    const reply = await nc.request(
      subject('budget', 'request'),
      sc.encode(
        JSON.stringify({
          tenant_id: 'acme',
          project_id: 'web',
          task_id: 'nats-task',
          model: 'claude',
          estimated_tokens: 3000,
        }),
      ),
      { timeout: 5000 },
    );
    assert.equal(JSON.parse(sc.decode(reply.data)).approved, true);
    await nc.close();
    await page.locator('[data-task="nats-task"]').waitFor({ timeout: 5000 });
    // And one by another user over HTTP.
    const ops = await apiAs(server.url, OPERATOR.username, OPERATOR.password);
    await ops.post('/budget/request', {
      tenant_id: 'acme',
      project_id: 'web',
      task_id: 'ops-task',
      model: 'm',
      estimated_tokens: 10,
    });
    await page.locator('[data-task="ops-task"]').waitFor({ timeout: 5000 });
    assert.equal(await page.evaluate(() => window.__marker), 'no reload');
    // Commit from the table.
    await page.getByRole('button', { name: 'Commit form-task' }).click();
    await page.getByLabel('Actual tokens used').fill('1000');
    await page.getByRole('dialog').getByRole('button', { name: 'Commit' }).click();
    await page.locator('[data-task="form-task"]').waitFor({ state: 'detached' });
    await page.screenshot({ path: `${artifacts}budget-after-reservations.png`, fullPage: true });
  });
});

test('governance: a new budget appears live; filters live in the URL; the DOM holds few rows', async () => {
  await Promise.all(
    Array.from({ length: 300 }, (_, i) =>
      admin.put('/budget/limit', {
        tenant_id: `bulk${String(i).padStart(3, '0')}`,
        project_id: 'p',
        total_tokens: 1000 + i,
      }),
    ),
  );
  await withPage('governance', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/governance?status=exhausted');
    await page.locator('[data-budget="acme/batch"]').waitFor();
    assert.equal(
      await page.locator('[data-budget="acme/web"]').count(),
      0,
      'the status filter comes from the URL',
    );
    // The server pages: the first view reads one page of 100 rows, not the whole list.
    const asked = [];
    page.on('request', (r) => {
      if (r.url().includes('/governance/status?')) asked.push(new URL(r.url()).searchParams);
    });
    await page.goto('/governance');
    await page.locator('[data-budget="acme/web"]').waitFor();
    const rows = await page.locator('[data-budget]').count();
    assert.ok(rows > 0 && rows <= 100, `${rows} rows in the DOM for 300+ budgets`);
    assert.ok(asked.length > 0 && asked.every((q) => q.get('limit') === '100'), `${asked}`);
    // Search and sort come from the URL and are the server's: the most used budget first.
    await page.goto('/governance?sort=utilisation&dir=desc');
    await page.locator('[data-budget]').first().waitFor();
    assert.equal(
      await page.locator('[data-budget]').first().getAttribute('data-budget'),
      'acme/batch',
    );
    await page.goto('/governance?q=BULK00');
    await page.getByText('10 budgets match this view').waitFor();
    assert.equal(await page.locator('[data-budget^="bulk00"]').count(), 10);
    assert.equal(await page.getByLabel('Search tenant or project').inputValue(), 'BULK00');
    await page.goto('/governance');
    await page.getByLabel('Search tenant or project').fill('zeta');
    await page.waitForURL(/q=zeta/);
    await admin.put('/budget/limit', { tenant_id: 'zeta', project_id: 'new', total_tokens: 50 });
    await page.locator('[data-budget="zeta/new"]').waitFor({ timeout: 5000 });
  });
});

test('dashboard: dead letters captured and resolved show in the trend of the alerts card', async () => {
  for (const id of ['trend-a', 'trend-b']) {
    await admin.post('/dlq', {
      id,
      original_subject: 'orders.created',
      payload: { n: 1 },
      error: 'schema mismatch',
      attempts: 3,
    });
  }
  // Both resolved: the dead-letter tests below find only their own open entries.
  for (const id of ['trend-a', 'trend-b'])
    await admin.post(`/dlq/${id}/resolve`, { note: 'fixed' });
  await withPage('dashboard-trend', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    const trend = page.getByTestId('dlq-trend');
    await trend
      .getByRole('img', { name: /Dead letters per minute: \d+ captured and \d+ resolved/ })
      .waitFor();
    const text = await trend.textContent();
    const [, captured, resolved] = text.match(/(\d+) captured and (\d+) resolved in the last hour/);
    assert.ok(Number(captured) >= 2 && Number(resolved) >= 2, text);
    await page.screenshot({ path: `${artifacts}dashboard-trend.png`, fullPage: true });
  });
});

test('an expired session goes to the login page with a message, then back', async () => {
  await withPage('expiry', async (page, context) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/budget?tenant=acme&project=web');
    await page.getByRole('heading', { name: 'acme / web' }).waitFor();
    await context.clearCookies(); // the session ends under the open page
    // The next request (this click's, or one already on its way) finds it gone.
    await page
      .getByRole('navigation', { name: 'Pages' })
      .getByRole('link', { name: 'Governance' })
      .click({ timeout: 3000 })
      .catch(() => {});
    await page.waitForURL(/\/login\?next=[^&]+&expired=1$/);
    const next = new URL(page.url()).searchParams.get('next');
    assert.ok(next === '/governance' || next.startsWith('/budget'), `next=${next}`);
    await page.getByText('Your session has expired').waitFor();
    await page.screenshot({ path: `${artifacts}login-expired.png` });
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(dep.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname + u.search === next);
    await page.getByRole('heading', { level: 1 }).waitFor();
  });
});

test('a chunk that does not arrive: the page says so, and Reload loads it', async () => {
  await withPage('chunk-failure', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    const title = 'The dashboard could not load';
    // A start-up stage (the app: MUI and the shell) fails: no React to render a message.
    await page.route(/\/assets\/App-[^/]*\.js$/, (r) => r.abort('connectionfailed'));
    await page.goto('/governance');
    const alert = page.getByRole('alert').filter({ hasText: title });
    await alert.waitFor();
    await page.screenshot({ path: `${artifacts}start-failed.png` });
    await page.unroute(/\/assets\/App-[^/]*\.js$/);
    await alert.getByRole('button', { name: 'Reload' }).click();
    await page.getByRole('heading', { level: 1, name: 'Governance' }).waitFor();
    // A page's own chunk fails: the shell stays, and the page's place offers the reload
    // ("Try again" would fail again: React.lazy keeps the failed import).
    await page.route(/\/assets\/BreakersPage-[^/]*\.js$/, (r) => r.abort('connectionfailed'));
    await page
      .getByRole('navigation', { name: 'Pages' })
      .getByRole('link', { name: 'Circuit breakers' })
      .click();
    await alert.waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.unroute(/\/assets\/BreakersPage-[^/]*\.js$/);
    await alert.getByRole('button', { name: 'Reload' }).click();
    await page.getByRole('heading', { level: 1, name: 'Circuit breakers' }).waitFor();
  });
});

test('the server restarts under an open page: it reconnects and shows what happened meanwhile', async () => {
  await withPage('restart', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/budget?tenant=acme&project=web');
    await page.locator('[data-live-state="live"]').waitFor();
    await page.locator('[data-task="nats-task"]').waitFor();
    // An event seen live gives the page a position to resume from.
    const ops0 = await apiAs(server.url, OPERATOR.username, OPERATOR.password);
    await ops0.post('/budget/request', {
      tenant_id: 'acme',
      project_id: 'web',
      task_id: 'before-restart',
      model: 'm',
      estimated_tokens: 5,
    });
    await page.locator('[data-task="before-restart"]').waitFor();
    const port = new URL(server.url).port;
    // A second process on the same database takes the writes while the first is down.
    const other = await dep.serve(0, 'serve-b');
    await dep.stop(server);
    await page.locator('[data-live-state="reconnecting"]').waitFor();
    const ops = await apiAs(other.url, OPERATOR.username, OPERATOR.password);
    await ops.post('/budget/request', {
      tenant_id: 'acme',
      project_id: 'web',
      task_id: 'while-down',
      model: 'm',
      estimated_tokens: 7,
    });
    server = await dep.serve(port, 'serve-a2');
    await page.locator('[data-task="while-down"]').waitFor({ timeout: 30_000 });
    await page.getByText(/caught up \d+ event/).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${artifacts}after-restart.png` });
    await dep.stop(other);
  });
});

// ---- Part 2: dead letters, breakers, audit -------------------------------------------------

/**
 * This run's work stream (the one its control plane watches for dead letters) and a worker
 * that NAKs every first-time message, so each dies after `max_deliver`, and acknowledges
 * requeued ones (they carry `Cp-Dlq-Entry`), counting them.
 */
async function deadLetterWorker() {
  // A worker's own JetStream work: the administrator's identity (a service's may only send
  // commands).
  const nc = await dep.adminNats();
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: dep.workStream, subjects: [`${dep.prefix}.task.>`] });
  await jsm.consumers.add(dep.workStream, {
    durable_name: 'worker',
    ack_policy: 'explicit',
    ack_wait: 1_000_000_000,
    max_deliver: 2,
  });
  const js = nc.jetstream();
  const consumer = await js.consumers.get(dep.workStream, 'worker');
  const requeued = [];
  const messages = await consumer.consume();
  (async () => {
    for await (const m of messages) {
      if (m.headers?.get('Cp-Dlq-Entry')) {
        requeued.push({ subject: m.subject, data: StringCodec().decode(m.data) });
        m.ack();
      } else {
        m.nak();
      }
    }
  })();
  const sc = StringCodec();
  return {
    requeued,
    publish: (suffix, body) => js.publish(`${dep.prefix}.task.${suffix}`, sc.encode(body)),
    close: async () => {
      messages.stop();
      await nc.close();
    },
  };
}

const until = async (what, fn, ms = 15_000) => {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test('dead letters: one dies and appears live, is requeued from its dialog, then a bulk redrive runs to the end', async () => {
  const worker = await deadLetterWorker();
  try {
    await withPage('dlq', async (page) => {
      await login(page, { username: 'admin', password: dep.password });
      await page.goto('/dlq');
      await page.getByRole('heading', { level: 1, name: 'Dead letters' }).waitFor();
      await page.getByText('No dead letters').waitFor();
      await page.locator('[data-live-state="live"]').waitFor();
      await page.evaluate(() => (window.__marker = 'no reload'));

      // A message that exceeds its max deliveries appears without a reload.
      const body = '{"order": 17,  "note": "spaces kept"}';
      await worker.publish('orders', body);
      const row = page.locator('[data-entry]').first();
      await row.waitFor({ timeout: 20_000 });
      assert.match(await row.textContent(), /max deliveries/);
      await assertFits(page, 'the list');

      // The detail: the payload byte for byte (text and hex), then resolve with requeue.
      await row.getByRole('button').click();
      const dialog = page.getByRole('dialog');
      await dialog.getByRole('button', { name: 'Text' }).click();
      assert.equal(await dialog.getByTestId('payload').textContent(), body);
      await dialog.getByRole('button', { name: 'Hex' }).click();
      assert.match(await dialog.getByTestId('payload').textContent(), /^00000000 {2}7b 22 6f 72/);
      await dialog.getByRole('tab', { name: /History/ }).click();
      await dialog.getByText('captured').waitFor();
      await page.screenshot({ path: `${artifacts}dlq-entry.png` });
      await assertFits(page, 'the entry dialog');
      await dialog.getByRole('button', { name: 'Resolve…' }).click();
      await dialog.getByLabel('Note').fill('fixed the schema');
      await dialog.getByRole('button', { name: 'Resolve and requeue' }).click();
      await dialog.waitFor({ state: 'detached' });
      await until('the requeued message', () => worker.requeued.length === 1);
      assert.deepEqual(worker.requeued[0], { subject: `${dep.prefix}.task.orders`, data: body });
      await page.getByText('No dead letters').waitFor();

      // Five more die; the group view counts them; one bulk redrive moves them all.
      for (let i = 0; i < 5; i++) await worker.publish('mail', `{"mail":${i}}`);
      await until(
        'five open entries',
        async () => (await page.locator('[data-entry]').count()) === 5,
      );
      await page.getByRole('tab', { name: 'Grouped by failure' }).click();
      await page.waitForURL(/view=groups/);
      const group = page.locator(`[data-group="${dep.prefix}.task.mail"]`);
      await page.locator(`[data-group="${dep.prefix}.task.mail"][data-count="5"]`).waitFor();
      await page.screenshot({ path: `${artifacts}dlq-groups.png`, fullPage: true });
      await assertFits(page, 'the groups');
      await group.getByRole('button', { name: `Redrive ${dep.prefix}.task.mail` }).click();
      // Slow enough (one per 3.3 s) for the pause to come between two messages.
      await page.getByLabel('Rate (messages per second)').fill('0.3');
      await page.getByRole('button', { name: 'Start redrive' }).click();
      const progress = page.getByTestId('redrive-progress');
      await progress.waitFor();
      await page.waitForURL(/job=/);
      // Paused after the first message: the bar stops where it is until it is resumed.
      await progress.getByText(/[1-4] requeued/).waitFor({ timeout: 20_000 });
      await progress.getByRole('button', { name: 'Pause redrive' }).click();
      await page.locator('[data-testid="redrive-progress"][data-state="paused"]').waitFor();
      await progress.getByText(/Paused by http:admin/).waitFor();
      await page.waitForTimeout(1500); // an entry in flight at the pause still finishes
      const atPause = await progress.getByLabel('Redrive progress').getAttribute('aria-valuenow');
      const movedAtPause = worker.requeued.length;
      await page.waitForTimeout(2500);
      assert.equal(
        await progress.getByLabel('Redrive progress').getAttribute('aria-valuenow'),
        atPause,
      );
      assert.equal(worker.requeued.length, movedAtPause, 'nothing moves while paused');
      assert.ok(movedAtPause < 6, `the pause held back the rest (${movedAtPause - 1} of 5)`);
      await page.screenshot({ path: `${artifacts}dlq-redrive-paused.png`, fullPage: true });
      await assertFits(page, 'a paused redrive');
      await progress.getByRole('button', { name: 'Resume redrive' }).click();
      await page.locator('[data-testid="redrive-progress"][data-state="completed"]').waitFor({
        timeout: 45_000,
      });
      assert.match(await progress.textContent(), /5 requeued, 0 skipped, 0 failed, 0 to go/);
      assert.equal(await page.getByLabel('Redrive progress').getAttribute('aria-valuenow'), '100');
      await until('five more requeued messages', () => worker.requeued.length === 6);
      // Per entry: each of the five moved, with its requeue's message id; one opens its entry.
      await progress.getByRole('button', { name: 'Results per entry (5)' }).click();
      const results = progress.getByRole('region', { name: 'Redrive results' });
      await until(
        'five moved entries listed',
        async () => (await results.locator('[data-outcome="moved"]').count()) === 5,
      );
      assert.match(await results.textContent(), /message id dlq\//);
      await assertFits(page, 'the redrive results');
      const firstMoved = results.locator('[data-outcome="moved"]').first();
      const movedId = await firstMoved.getAttribute('data-result');
      await firstMoved.getByRole('button').click();
      await page.waitForURL(/entry=/);
      await page
        .getByRole('dialog')
        .getByRole('heading', { name: `Dead letter ${movedId}` })
        .waitFor();
      await assertFits(page, 'an entry opened from the results');
      await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
      await page.getByText('No open dead letters').waitFor();
      await page.screenshot({ path: `${artifacts}dlq-redrive.png`, fullPage: true });
      await assertFits(page, 'the redrive done');
      assert.equal(await page.evaluate(() => window.__marker), 'no reload');

      // Filters live in the URL: the resolved ones, by subject.
      await page.goto(`/dlq?status=resolved&subject=${dep.prefix}.task.mail`);
      await until(
        'five resolved rows',
        async () => (await page.locator('[data-entry]').count()) === 5,
      );
    });
  } finally {
    await worker.close();
  }
});

test('dead letters: an operator edits a payload, reviews and confirms it; the worker gets the edit, the original stays readable', async () => {
  const worker = await deadLetterWorker();
  try {
    await withPage('dlq-edit', async (page) => {
      await login(page, { username: 'admin', password: dep.password });
      const original = '{"invoice": "seventeen"}';
      const fixed = '{"invoice": 17}';
      const subject = `${dep.prefix}.task.invoices`;
      await page.goto(`/dlq?subject=${subject}`);
      await page.locator('[data-live-state="live"]').waitFor();
      await worker.publish('invoices', original);
      const row = page.locator('[data-entry]').first();
      await row.waitFor({ timeout: 20_000 });
      await row.getByRole('button').click();
      const dialog = page.getByRole('dialog');
      await dialog.getByRole('button', { name: 'Edit, then requeue…' }).click();
      const editor = dialog.getByLabel('Edited payload');
      assert.equal(await editor.inputValue(), original, 'the editor starts from the exact bytes');
      assert.equal(
        await dialog.getByRole('button', { name: 'Review the edit…' }).isDisabled(),
        true,
        'nothing edited yet',
      );
      await editor.fill(fixed);
      await dialog.getByRole('button', { name: 'Review the edit…' }).click();
      // The review: what is sent, both sizes and hashes, then a note and the confirmation.
      const confirm = dialog.getByRole('form', { name: 'Confirm the edited requeue' });
      assert.equal(await confirm.getByTestId('edited-payload').textContent(), fixed);
      await confirm.getByText(/Edited.*15 bytes · SHA-256 [0-9a-f]{16}…/).waitFor();
      await confirm.getByText(/Captured.*24 bytes · SHA-256 [0-9a-f]{16}…/).waitFor();
      await page.screenshot({ path: `${artifacts}dlq-edit-confirm.png` });
      await assertFits(page, 'the edit review');
      await confirm.getByLabel('Note').fill('invoice numbers are numbers');
      await confirm.getByRole('button', { name: 'Requeue edited payload' }).click();
      await dialog.waitFor({ state: 'detached' });
      await until('the edited message', () => worker.requeued.length === 1);
      assert.deepEqual(worker.requeued[0], { subject, data: fixed });

      // The resolved entry: the edit by default, the captured payload one click away.
      await page.goto(`/dlq?status=resolved&subject=${subject}`);
      await page.locator('[data-entry]').first().getByRole('button').click();
      await dialog.getByRole('button', { name: 'Text' }).click();
      assert.equal(await dialog.getByTestId('payload').textContent(), fixed);
      await dialog.getByRole('button', { name: 'Captured' }).click();
      assert.equal(await dialog.getByTestId('payload').textContent(), original);
      await dialog.getByRole('tab', { name: /History/ }).click();
      await dialog.getByText(/edited\s*by http:admin/).waitFor();
      await dialog.getByText(/SHA-256 [0-9a-f]{16}… → [0-9a-f]{16}…/).waitFor();
      await axe(page, 'the edited entry');
    });
  } finally {
    await worker.close();
  }
});

test('dead letters: an entry captured between the page’s read and its live subscription appears without a reload', async () => {
  const subject = `${dep.prefix}.race.between`;
  const capture = (id) =>
    admin.post('/dlq', {
      id,
      original_subject: subject,
      payload: { id },
      error: 'captured between a read and the subscription',
      attempts: 3,
    });
  await withPage('dlq-race', async (page) => {
    await login(page, { username: 'admin', password: dep.password });

    // 1. The entry script's read, before the page: its answer leaves the server, then an entry
    //    is captured, and only then does the page's chunk load (and the page subscribe).
    let releaseChunk;
    const chunkHeld = new Promise((resolve) => (releaseChunk = resolve));
    await page.route(/\/assets\/DlqPage-[^/]*\.js$/, async (route) => {
      await chunkHeld;
      await route.continue();
    });
    let reads = 0;
    await page.route(
      (url) => url.pathname === '/dlq' && url.searchParams.get('subject') === subject,
      async (route) => {
        if (route.request().resourceType() === 'document' || reads++ > 0) return route.continue();
        const response = await route.fetch();
        assert.equal((await response.json()).total, 0, 'read before the capture');
        await capture('between-read-and-subscription');
        releaseChunk();
        await route.fulfill({ response });
      },
    );
    await page.goto(`/dlq?subject=${subject}`);
    await page.getByRole('heading', { level: 1, name: 'Dead letters' }).waitFor();
    await page.locator('[data-entry="between-read-and-subscription"]').waitFor({ timeout: 20_000 });
    assert.ok(reads >= 2, `the list was read again once subscribed (${reads} reads)`);
    await page.evaluate(() => (window.__marker = 'no reload'));

    // 2. The list kept from an earlier visit: the page is left (its topic released), an entry
    //    is captured, and going back shows the cached list, not read again on its own: the
    //    topic is subscribed from where the page left, and the replay brings the entry.
    await page.getByRole('link', { name: 'Governance' }).click();
    await page.getByRole('heading', { level: 1, name: 'Governance' }).waitFor();
    await capture('while-away');
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: 'Dead letters' }).waitFor();
    await page.locator('[data-entry="while-away"]').waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('[data-entry]').count(), 2);
    assert.equal(await page.evaluate(() => window.__marker), 'no reload');
  });
});

/**
 * Holds `table` locked against writes (reads go on) in a psql session of its own until
 * `release()`: the projector cannot apply a batch that writes it. A table lock takes no
 * transaction id, so the publisher (whose horizon waits for those) still puts the events on the
 * stream, and the socket delivers them: the read model is behind the socket.
 */
async function holdWrites(table) {
  const psql = spawn('psql', [dep.databaseUrl, '-qAt'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const locked = new Promise((resolve, reject) => {
    psql.stdout.on('data', (d) => String(d).includes('locked') && resolve());
    psql.on('exit', () => reject(new Error('psql ended before the lock')));
  });
  psql.stdin.write(`BEGIN; LOCK TABLE ${table} IN SHARE MODE; SELECT 'locked';\n`);
  await locked;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      psql.stdin.end('ROLLBACK;\n');
    },
  };
}

test('dead letters: an entry the read model had not applied at the page’s read appears once it is', async () => {
  const subject = `${dep.prefix}.race.behind`;
  await withPage('dlq-behind', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    const hold = await holdWrites('read_dlq');
    try {
      // Captured: on the socket at once, not in the read model while the lock is held.
      await admin.post('/dlq', {
        id: 'behind-the-socket',
        original_subject: subject,
        payload: { id: 1 },
        error: 'captured while the projector was behind',
        attempts: 3,
      });
      // The page's reads stand before it (their read_position); its socket stands past it. The
      // topic is followed from the reads, so the capture is replayed, and the list is read again
      // waiting for it (min_position): the lock is released as that read goes out. Followed from
      // where the socket stood instead, no event would come, and nothing would read the list again.
      const firstReads = [];
      await page.route(
        (url) => url.pathname === '/dlq' && url.searchParams.get('subject') === subject,
        async (route) => {
          if (route.request().resourceType() === 'document') return route.continue();
          if (new URL(route.request().url()).searchParams.has('min_position')) {
            hold.release();
            return route.continue();
          }
          const response = await route.fetch();
          firstReads.push((await response.json()).total);
          await route.fulfill({ response });
        },
      );
      await page.goto(`/dlq?subject=${subject}`);
      await page.getByRole('heading', { level: 1, name: 'Dead letters' }).waitFor();
      await page.locator('[data-entry="behind-the-socket"]').waitFor({ timeout: 20_000 });
      assert.ok(firstReads.length > 0, 'the list was read');
      assert.ok(
        firstReads.every((total) => total === 0),
        `read while the read model had not applied it (${firstReads})`,
      );
    } finally {
      hold.release();
    }
  });
});

test('the operations pages stay within the window after use, at 1,280 and at 390 px (long ids, subjects, errors and payloads)', async () => {
  // What real traffic brings: unbroken ids, subjects, hashes and error texts.
  const hex = '0123456789abcdef'.repeat(8);
  const breaker = `payments-gateway-eu-west-1-${'x'.repeat(37)}`; // the longest name (64)
  const { nc, subject } = await dep.serviceNats('e2e-fit');
  const sc = StringCodec();
  for (let i = 0; i < 5; i++) {
    await nc.request(
      subject('breaker', 'record'),
      sc.encode(
        JSON.stringify({ name: breaker, outcome: 'failure', error: `refused: ${hex}${i}` }),
      ),
      { timeout: 5000 },
    );
  }
  await nc.close();
  for (const width of [1280, 390]) {
    const dlqSubject = `fit${width}.orders.created.region-eu-west-1.${hex.slice(0, 48)}`;
    for (let i = 0; i < 3; i++) {
      await admin.post('/dlq', {
        id: `fit-${width}-${i}-${hex.slice(0, 40)}`,
        original_subject: dlqSubject,
        payload: { order: i, sha256: hex, note: `unbroken ${'Z'.repeat(200)}` },
        error: `handler failed: upstream said ${'E'.repeat(160)}`,
        attempts: 5,
        headers: { 'Trace-Id': hex, 'Nats-Msg-Id': `msg-${hex}` },
      });
    }
    await withPage(
      `fit-${width}`,
      async (page) => {
        const fits = (what) => assertFits(page, `${what} at ${width} px`);
        await login(page, { username: 'admin', password: dep.password });
        await page.goto(`/dlq?subject=${dlqSubject}`);
        await until(
          'three entries',
          async () => (await page.locator('[data-entry]').count()) === 3,
        );
        await fits('the dead letters');
        await page.locator('[data-entry]').first().getByRole('button').click();
        const dialog = page.getByRole('dialog');
        for (const view of ['Text', 'Hex']) {
          await dialog.getByRole('button', { name: view }).click();
          await fits(`an entry's payload as ${view}`);
        }
        for (const tab of ['Details', 'Headers', 'History']) {
          await dialog.getByRole('tab', { name: new RegExp(tab) }).click();
          await fits(`an entry's ${tab.toLowerCase()}`);
        }
        await dialog.getByRole('tab', { name: 'Payload' }).click();
        await dialog.getByRole('button', { name: 'Edit, then requeue…' }).click();
        await dialog.getByLabel('Edited payload').fill(`{"sha256": "${hex}${hex}"}`);
        await dialog.getByRole('button', { name: 'Review the edit…' }).click();
        await dialog.getByRole('form', { name: 'Confirm the edited requeue' }).waitFor();
        await fits('the review of an edit');
        await dialog.getByRole('button', { name: 'Close' }).click();
        await dialog.waitFor({ state: 'detached' });
        await page.getByRole('tab', { name: 'Grouped by failure' }).click();
        await page.locator(`[data-group="${dlqSubject}"][data-count="3"]`).waitFor();
        await fits('the groups');
        await page.getByRole('button', { name: `Redrive ${dlqSubject}` }).click();
        await fits('the redrive dialog');
        await page.getByRole('button', { name: 'Start redrive' }).click();
        const progress = page.getByTestId('redrive-progress');
        await page.locator('[data-testid="redrive-progress"][data-state="completed"]').waitFor({
          timeout: 30_000,
        });
        await progress.getByRole('button', { name: /Results per entry/ }).click();
        await progress.locator('[data-outcome]').first().waitFor();
        await fits('a redrive and its results');
        await page.goto(`/dlq?status=all&subject=${dlqSubject}`);
        await page.locator('[data-entry]').first().waitFor();
        await fits('the resolved dead letters');

        await page.goto('/audit?aggregate_type=DlqEntry');
        await page.locator('[data-position]').last().getByRole('button').click();
        await page
          .getByRole('dialog')
          .getByText(/DlqEntry/)
          .first()
          .waitFor();
        await fits('an audit event');
        await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
        await fits('the audit log');

        await page.goto('/breakers');
        const card = page.locator(`[data-breaker="${breaker}"]`);
        await card.waitFor();
        await card.getByText('Last 10 openings').click();
        await card
          .getByTestId('transitions-openings')
          .getByText(/cause: refused/)
          .waitFor();
        await fits('the circuit breakers');

        for (const [path, heading] of [
          ['/users', 'Users'],
          ['/sandbox', 'Sandbox'],
        ]) {
          await page.goto(path);
          await page.getByRole('heading', { level: 1, name: heading }).waitFor();
          await settle(page);
          await fits(`the ${heading} page`);
        }
        await page.screenshot({ path: `${artifacts}fit-${width}.png`, fullPage: true });
      },
      { width, height: width < 600 ? 844 : 900 },
    );
  }
});

test('breakers: one tripped over NATS turns OPEN on its card without a reload and is reset from the page', async () => {
  await withPage('breakers', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/breakers');
    await page.getByRole('heading', { level: 1, name: 'Circuit breakers' }).waitFor();
    await page.locator('[data-live-state="live"]').waitFor();
    await page.evaluate(() => (window.__marker = 'no reload'));
    const { nc, subject } = await dep.serviceNats('e2e-breakers');
    const sc = StringCodec();
    // Five calls go well, then five fail: the fifth failure in a row opens it; half of the
    // calls of the last five minutes failed.
    for (let i = 0; i < 5; i++) {
      await nc.request(
        subject('breaker', 'record'),
        sc.encode(JSON.stringify({ name: 'e2e-db', outcome: 'success' })),
        { timeout: 5000 },
      );
    }
    for (let i = 0; i < 5; i++) {
      await nc.request(
        subject('breaker', 'record'),
        sc.encode(JSON.stringify({ name: 'e2e-db', outcome: 'failure', error: `refused ${i}` })),
        { timeout: 5000 },
      );
    }
    await nc.close();
    const card = page.locator('[data-breaker="e2e-db"]');
    await page.locator('[data-breaker="e2e-db"][data-state="OPEN"]').waitFor({ timeout: 10_000 });
    await card.getByText(/Half-open in/).waitFor();
    await card.getByText('Last error: refused 4').waitFor();
    // The rate follows the counts every process stores (read again on each stats frame).
    await card
      .getByTestId('failure-rate')
      .getByText(/50% of 10 calls \(5 failed\)/)
      .waitFor({ timeout: 20_000 });
    assert.ok(
      Number(
        await card.getByLabel('Time until e2e-db turns half-open').getAttribute('aria-valuenow'),
      ) < 100,
    );
    await card.getByText('Last 10 openings').click();
    await card
      .getByTestId('transitions-openings')
      .getByText(/opened from CLOSED · cause: refused 4/)
      .waitFor();
    await page.screenshot({ path: `${artifacts}breakers-open.png`, fullPage: true });
    // Forced open with a reason, which the card's transitions show.
    await card.getByRole('button', { name: 'Force open e2e-db' }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('e2e maintenance');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.locator('[data-breaker="e2e-db"][data-state="FORCED_OPEN"]').waitFor();
    await card.getByText('Forced changes (who, why)').click();
    const forced = card.getByTestId('transitions-overrides');
    await forced.getByText(/forced open by http:admin: “e2e maintenance”/).waitFor();
    await card.getByRole('button', { name: 'Reset e2e-db' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.locator('[data-breaker="e2e-db"][data-state="CLOSED"]').waitFor({ timeout: 10_000 });
    await forced.getByText(/reset by http:admin/).waitFor();
    assert.equal(await page.evaluate(() => window.__marker), 'no reload');
    // A forced change links to the audit page filtered to this breaker, its event open.
    await forced
      .getByRole('link', { name: /^event / })
      .last()
      .click();
    await page.waitForURL(/\/audit\?aggregate_type=CircuitBreaker&aggregate_id=e2e-db&event=\d+/);
    await page
      .getByRole('dialog')
      .getByText(/BreakerForcedOpen/)
      .first()
      .waitFor();
  });
  // A viewer sees the card, with every action disabled and the permission named.
  await withPage('breakers-viewer', async (page) => {
    await login(page, VIEWER);
    await page.goto('/breakers');
    await page.locator('[data-breaker="e2e-db"]').waitFor();
    for (const name of ['Reset all…', 'Force open e2e-db', 'Disable e2e-db']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).isDisabled(), true, name);
    }
    assert.ok(await page.locator('[data-missing-permission="admin:reset_breakers"]').count());
  });
});

test('audit: a search by aggregate, the event with its hashes, a verify and an export of exactly the filtered set', async () => {
  await withPage('audit', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/audit');
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await page.getByLabel('Aggregate type').fill('CircuitBreaker');
    await page.getByLabel('Aggregate id').fill('e2e-db');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/aggregate_type=CircuitBreaker&aggregate_id=e2e-db/);
    const expected = await admin.get(
      '/audit/events?aggregate_type=CircuitBreaker&aggregate_id=e2e-db&limit=1000',
    );
    assert.ok(expected.events.length >= 6, `${expected.events.length} breaker events`);
    await until(
      'every breaker event listed',
      async () => (await page.locator('[data-position]').count()) === expected.events.length,
    );
    // The second event of the chain: its previous hash is the first event's hash.
    const second = expected.events[1];
    await page.locator(`[data-position="${second.global_position}"]`).getByRole('button').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(second.hash).waitFor();
    await dialog.getByText(expected.events[0].hash).waitFor();
    await page.screenshot({ path: `${artifacts}audit-event.png` });
    await dialog.getByRole('button', { name: 'Close' }).click();

    // The verify streams its progress (phase, events done of total) before the result.
    await page.evaluate(() => {
      window.__verifyPhases = [];
      new MutationObserver(() => {
        const el = document.querySelector('[data-testid="verify-progress"]');
        const phase = el?.getAttribute('data-phase');
        if (phase && window.__verifyPhases.at(-1) !== phase) window.__verifyPhases.push(phase);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await page.getByRole('button', { name: 'Verify the log' }).click();
    await page
      .getByTestId('verify-result')
      .getByText(/The log verifies/)
      .waitFor({ timeout: 30_000 });
    const phases = await page.evaluate(() => window.__verifyPhases);
    assert.ok(phases.length >= 1, `a progress indication was shown (${phases.join(', ')})`);
    const order = ['starting', 'chains', 'checkpoints', 'stream'];
    assert.deepEqual(
      [...phases].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
      phases,
      'phases in order',
    );

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export NDJSON' }).click(),
    ]);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\n')
      .map(JSON.parse);
    assert.deepEqual(
      lines.map((e) => e.global_position),
      expected.events.map((e) => e.global_position),
      'the export is exactly the filtered set',
    );
    await page.screenshot({ path: `${artifacts}audit-search.png`, fullPage: true });
  });
});

test('sandbox: code runs from the editor with Ctrl+Enter through the control plane; a viewer cannot open the page', async (t) => {
  if (!dep.sandboxUrl) {
    t.skip(`no sandbox: ${dep.sandboxSkip}`);
    return;
  }
  await withPage('sandbox', async (page) => {
    const csp = [];
    page.on('console', (m) => {
      if (/Content Security Policy|web worker/i.test(m.text())) csp.push(m.text());
    });
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/sandbox');
    await page
      .getByTestId('limits')
      .getByText(/network off/)
      .waitFor();
    await page.locator('.monaco-editor').waitFor({ timeout: 30_000 });
    await page.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('Control+A');
    // Inserted as one input (typed key by key, a suggestion popup can swallow a letter).
    await page.keyboard.insertText('import sys\nprint(6*7)\nsys.exit(3)');
    await page.keyboard.press('Control+Enter');
    const result = page.getByTestId('run-result');
    await result.waitFor({ timeout: 60_000 });
    assert.equal((await page.getByTestId('stdout').textContent()).trim(), '42');
    assert.equal(await page.getByTestId('exit-code').textContent(), 'exit 3');
    // The run reaches the audit log a moment later and is listed as one of the person's own.
    await page
      .getByTestId('my-runs')
      .locator('li')
      .first()
      .getByText(/python · \d+ bytes · exit 3/)
      .waitFor({ timeout: 15_000 });
    await page.screenshot({ path: `${artifacts}sandbox-run.png`, fullPage: true });
    assert.deepEqual(csp, [], 'Monaco and its worker load under the CSP');
  });
  await withPage('sandbox-viewer', async (page) => {
    await login(page, VIEWER);
    await page.goto('/sandbox');
    await page.getByRole('heading', { name: /403/ }).waitFor();
    assert.match(await page.textContent('main'), /execute:code/);
  });
});

test('sandbox: a person’s recent runs come from the audit log, theirs only', async () => {
  // Reports as the sandbox service publishes them (sandbox/src/audit.rs); no engine needed.
  const nc = await dep.adminNats();
  const sc = StringCodec();
  const report = (id, who, exitCode) => ({
    event_type: 'SandboxCodeExecuted',
    event_version: 1,
    id,
    at: new Date().toISOString(),
    who,
    role: who === 'admin' ? 'admin' : 'developer',
    language: 'python',
    code_sha256: 'ab'.repeat(32),
    code_bytes: 21,
    duration_ms: 312,
    exit_code: exitCode,
    timed_out: false,
    oom_killed: false,
    truncated: false,
    outcome: exitCode === 0 ? 'ok' : 'exit_nonzero',
    instance: 'e2e',
  });
  // Through JetStream, acknowledged: the control plane makes the sandbox's stream as it
  // starts, and a plain publish sent before that (a busy machine) would be lost unseen.
  const js = nc.jetstream();
  for (const [id, who, code] of [
    ['e2e-run-1', 'admin', 0],
    ['e2e-run-2', 'someone-else', 0],
    ['e2e-run-3', 'admin', 7],
  ]) {
    const data = sc.encode(JSON.stringify(report(id, who, code)));
    await until(`the report ${id} stored`, () =>
      js.publish(`${dep.prefix}.audit.sandbox`, data, { msgID: id }).then(
        () => true,
        () => false,
      ),
    );
  }
  await nc.close();
  await withPage('sandbox-runs', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/sandbox');
    const mine = page.getByTestId('my-runs');
    // This test's reports among the listed runs (with a container engine, the sandbox test
    // before this one ran code as admin too, and that run is listed as well).
    const reported = async () =>
      (await mine.locator('li').evaluateAll((lis) => lis.map((l) => l.dataset.run))).filter((id) =>
        id?.startsWith('e2e-run-'),
      );
    // Read on arrival; reports recorded after that show on the next visit.
    await until(
      'two runs of admin',
      async () => {
        if ((await reported()).length >= 2) return true;
        await page.reload();
        await page.getByRole('heading', { name: 'Your recent runs' }).waitFor();
        return false;
      },
      20_000,
    );
    assert.deepEqual(
      await reported(),
      ['e2e-run-3', 'e2e-run-1'],
      'newest first, only the person’s own',
    );
    await mine
      .locator('[data-run="e2e-run-3"]')
      .getByText(/exit 7/)
      .waitFor();
    await mine.locator('[data-run="e2e-run-3"]').getByText('non-zero exit').waitFor();
    await axe(page, 'the sandbox page with runs');
  });
});

/** Signed in as admin on /users: adds an account (a viewer) with the page's form. */
async function addUserFromPage(page, { username, password }) {
  const form = page.getByRole('form', { name: 'Add a user' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Add user' }).click();
  return form;
}

test("users: another admin's change appears live; an admin limits an account's tenants from the page, the person's open session ends and the next one has the new scope", async () => {
  const op = { username: 'scoped-account', password: 'scoped-account-password-1' };
  await withPage('users-tenants', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/users');
    await addUserFromPage(page, op);
    const row = page.locator(`[data-user="${op.username}"]`);
    await row.getByText('Tenants: all').waitFor();
    // Another admin's change appears without a reload (the `users` topic).
    const another = await browser.newContext({ baseURL: server.url });
    try {
      const admin2 = await another.newPage();
      await login(admin2, { username: 'admin', password: dep.password });
      const changed = await admin2.request.patch(`/users/${op.username}`, {
        headers: { 'X-Requested-With': 'XMLHttpRequest' },
        data: { role: 'auditor' },
      });
      assert.equal(changed.status(), 200);
    } finally {
      await another.close();
    }
    await row.getByRole('combobox').getByText('auditor').waitFor();

    // The account's person signs in (a session of their own, open before the change).
    const theirs = await browser.newContext({ baseURL: server.url });
    try {
      const them = await theirs.newPage();
      await login(them, op);
      const state = (tenant) =>
        them.request
          .get(`/budget/state?tenant_id=${tenant}&project_id=web`)
          .then((r) => r.status());
      assert.notEqual(await state('zeta'), 403, 'every tenant before the change');

      // A bad tenant id is refused at the field and changes nothing.
      await row.getByRole('button', { name: `Edit tenants of ${op.username}` }).click();
      const dialog = page.getByRole('dialog', { name: `Tenants of ${op.username}` });
      const field = dialog.getByLabel('Tenants (comma-separated; empty: all)');
      await field.fill('acme, not a tenant!');
      await dialog.getByRole('button', { name: 'Save tenants' }).click();
      await dialog.locator('.Mui-error').first().waitFor();
      assert.equal(await field.getAttribute('aria-invalid'), 'true');
      assert.notEqual(await state('zeta'), 403, 'a refused change changes nothing');

      await field.fill('acme');
      await dialog.getByRole('button', { name: 'Save tenants' }).click();
      await dialog.waitFor({ state: 'detached' });
      await row.getByText('Tenants: acme').waitFor();
      // The change ends that open session (its token named the old scope) ...
      assert.equal(await state('acme'), 401);
      // ... and the next one has the new scope: another tenant is refused, their own is not.
      await login(them, op);
      assert.equal(await state('zeta'), 403);
      assert.notEqual(await state('acme'), 403);
    } finally {
      await theirs.close();
    }
  });
});

test('users: an admin adds a viewer from the page (and may not disable themselves), who then signs in and cannot reach the sandbox', async () => {
  const viewer = { username: 'added-viewer', password: 'added-viewer-password-1' };
  await withPage('users', async (page) => {
    await login(page, { username: 'admin', password: dep.password });
    await page.goto('/users');
    await addUserFromPage(page, viewer);
    await page.locator(`[data-user="${viewer.username}"]`).waitFor();
    // The same name again: 409, said at the field.
    const form = await addUserFromPage(page, viewer);
    await form.getByText('This name is taken').waitFor();
    // The signed-in admin's own row: the server refuses disabling yourself and changing your
    // own role (400), so the page offers neither and says why.
    const own = page.locator('[data-user="admin"]');
    assert.equal(await own.getByRole('button', { name: 'Disable admin' }).isDisabled(), true);
    const refused = own.locator('[data-refused="You cannot disable yourself"]');
    await refused.hover();
    await page.getByRole('tooltip', { name: 'You cannot disable yourself' }).waitFor();
    assert.equal(await own.locator('[data-refused="You cannot change your own role"]').count(), 1);
    // Another account's button stays enabled.
    const other = page.locator(`[data-user="${viewer.username}"]`);
    assert.equal(
      await other.getByRole('button', { name: `Disable ${viewer.username}` }).isDisabled(),
      false,
    );
    await page.screenshot({ path: `${artifacts}users.png`, fullPage: true });
  });
  await withPage('users-viewer', async (page) => {
    await login(page, viewer);
    const nav = page.getByRole('navigation', { name: 'Pages' });
    await nav.getByRole('link', { name: 'Budget' }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'Sandbox' }).count(), 0);
    await page.goto('/sandbox');
    await page.getByRole('heading', { name: /403/ }).waitFor();
    assert.match(await page.textContent('main'), /execute:code/);
  });
});
