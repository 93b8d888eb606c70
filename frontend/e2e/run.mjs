// End-to-end: the built app in Debian's Chromium (playwright-core) against a real
// `controlplane serve` on real PostgreSQL and NATS. Screenshots of every page (light, dark,
// 390 px) go to frontend/e2e-artifacts/, with a trace of any failing test.
//   CONTROLPLANE_BIN=… DATABASE_URL=… NATS_URL=… node e2e/run.mjs   (scripts/frontend.sh e2e)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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
    await page.goto('/governance');
    await page.locator('[data-budget="acme/web"]').waitFor();
    const rows = await page.locator('[data-budget]').count();
    assert.ok(rows > 0 && rows <= 100, `${rows} rows in the DOM for 300+ budgets`);
    await page.getByLabel('Search tenant or project').fill('zeta');
    await page.waitForURL(/q=zeta/);
    await admin.put('/budget/limit', { tenant_id: 'zeta', project_id: 'new', total_tokens: 50 });
    await page.locator('[data-budget="zeta/new"]').waitFor({ timeout: 5000 });
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
