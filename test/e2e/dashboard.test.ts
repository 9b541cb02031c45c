/**
 * The ops dashboard in a real browser (Debian's chromium via playwright-core) against the real
 * swarm: the activator runs as a Swarm service, apps are real services. Log in (a wrong token is
 * refused), see the apps grouped by environment, wake one and watch its state change live,
 * change a timeout, put one to sleep, and see a change made elsewhere arrive without a reload.
 */
import t from 'tap';
import type { Browser, Page, Request } from 'playwright-core';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { launchChromium, screenshotPath } from '../helpers/browser.js';
import { createApp, runId, serviceState, waitFor, type TestApp } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('dash');
let activator: RunningActivator;
let browser: Browser;
let web: TestApp;
let api: TestApp;

t.before(async () => {
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_WAKE_TIMEOUT: '30s', ACTIVATOR_MIN_AWAKE: '0s' } });
  // "web" belongs to environment pr-7 (as `swarm-activator deploy` labels it); "api" to none.
  web = await createApp({ name: `${run}-web`, run, env: { STARTUP_DELAY_MS: '1500' }, memoryReservation: 256 * 1024 ** 2, labels: { [LABELS.deployEnv]: 'pr-7', [LABELS.deployApp]: 'shop' } });
  api = await createApp({ name: `${run}-api`, run, labels: { [LABELS.keepAwake]: 'Mon-Fri 08:00-18:00' } });
  await activator.waitForApp(web.name);
  await activator.waitForApp(api.name);
  browser = await launchChromium();
});
t.teardown(async () => {
  await browser?.close();
  await web?.remove();
  await api?.remove();
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

const row = (page: Page, service: string) => page.locator(`tr.app[data-service="${service}"]`);

/** Records every state a row shows, as the page changes it (a MutationObserver in the page). */
async function watchStates(page: Page, service: string): Promise<() => Promise<string[]>> {
  const key = JSON.stringify(`states:${service}`);
  // In-page code as a string: this file is compiled without the DOM's types.
  await page.evaluate(`(() => {
    const el = document.querySelector('tr.app[data-service=' + ${JSON.stringify(JSON.stringify(service))} + ']');
    const seen = [el.dataset.state];
    window[${key}] = seen;
    new MutationObserver(() => { if (seen[seen.length - 1] !== el.dataset.state) seen.push(el.dataset.state); })
      .observe(el, { attributes: true, attributeFilter: ['data-state'] });
  })()`);
  return () => page.evaluate<string[]>(`window[${key}] || []`);
}

t.test('a wrong token is refused: no session, no data', async (t) => {
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  await page.goto(`${activator.adminUrl}/`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', 'not-the-token');
  await page.click('#login button[type=submit]');
  await page.locator('#login-error').waitFor({ state: 'visible' });
  t.equal(await page.textContent('#login-error'), 'That token was refused.');
  t.equal(await page.locator('tr.app').count(), 0, 'no apps shown');
  t.same((await context.cookies()).filter((c) => c.name === 'sa_session'), [], 'no session cookie');
  const events = await page.evaluate<number>(`fetch('/api/events').then((r) => r.status)`);
  t.equal(events, 401, 'the live feed refuses the browser without a session');
});

t.test('log in, see the apps by environment, wake one live, change a timeout, put one to sleep', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1500, height: 620 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (r: Request) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await page.goto(`${activator.adminUrl}/`);
  await page.fill('#token', activator.adminToken);
  await page.click('#login button[type=submit]');
  await row(page, web.name).waitFor();
  await row(page, api.name).waitFor();
  t.equal(await page.textContent('#live'), 'live', 'the live feed is connected');
  t.equal(await page.textContent('#role'), 'operator');
  const cookie = (await context.cookies()).find((c) => c.name === 'sa_session');
  t.ok(cookie?.httpOnly, 'session cookie is HttpOnly');
  t.equal(cookie?.sameSite, 'Strict', 'and SameSite=Strict');

  // Grouped by environment: pr-7 holds web; api has none.
  t.equal(await page.locator('section.env[data-env="pr-7"] tr.app').count(), 1);
  t.equal(await page.locator(`section.env[data-env="pr-7"] tr.app[data-service="${web.name}"]`).count(), 1);
  t.equal(await page.locator(`section.env[data-env="ungrouped"] tr.app[data-service="${api.name}"]`).count(), 1);
  t.equal(await row(page, web.name).getAttribute('data-state'), 'asleep');
  t.equal(await row(page, web.name).locator('.hosts').textContent(), web.host);

  // Wake: the row goes waking → awake by itself (the app takes 1.5 s to start).
  const states = await watchStates(page, web.name);
  const wakeClicked = Date.now();
  await row(page, web.name).locator('button.wake').click();
  await page.locator(`tr.app[data-service="${web.name}"][data-state="awake"]`).waitFor({ timeout: 30_000 });
  const wakeMs = Date.now() - wakeClicked;
  t.same((await states()).filter((s, i, all) => all.indexOf(s) === i), ['asleep', 'waking', 'awake'], `asleep → waking → awake, live (${wakeMs} ms)`);
  t.equal((await serviceState(web.name)).replicas, 1, 'really scaled up');
  t.match(await row(page, web.name).locator('.reason').textContent(), /woken: ops API/, 'why it is awake');
  t.match(await row(page, web.name).locator('.wake-list li').first().textContent(), /^\d+(\.\d)? s$/, 'the wake and its duration are in its history');
  t.match(await row(page, web.name).locator('.usual').textContent(), /^usually /);
  t.match(await row(page, web.name).locator('.action-msg').textContent(), /^awake in /);

  // Idle timeout, edited in place: the label changes and the page shows the new value from the feed.
  await row(page, web.name).locator('.idle-input').fill('7m');
  await row(page, web.name).locator('.idle-form button').click();
  await row(page, web.name).locator('.idle-msg', { hasText: 'set to 7m' }).waitFor();
  await waitFor('the idle-timeout label', async () => (await serviceState(web.name)).labels[LABELS.idleTimeout] === '7m', 5000, 50);
  t.pass('idle timeout label is 7m');

  // A change made elsewhere (the API, another operator) arrives without any action in the page.
  const apiStates = await watchStates(page, api.name);
  const woke = await activator.adminFetch(`/api/apps/${api.name}/wake`, { method: 'POST' });
  t.equal(woke.status, 200);
  await page.locator(`tr.app[data-service="${api.name}"][data-state="awake"]`).waitFor({ timeout: 10_000 });
  t.ok((await apiStates()).includes('awake'), 'a wake by someone else shows up live');

  // Sleep: scaled to 0, and the row says so, live.
  await row(page, web.name).locator('button.sleep').click();
  await page.locator(`tr.app[data-service="${web.name}"][data-state="asleep"]`).waitFor({ timeout: 15_000 });
  t.equal((await serviceState(web.name)).replicas, 0, 'really scaled down');
  t.match(await row(page, web.name).locator('.reason').textContent(), /sleep: ops API/);
  t.equal(await row(page, web.name).locator('.action-msg').textContent(), 'scaled down');
  // Keep awake until a given time (the browser's local time in the picker).
  const until = new Date(Date.now() + 2 * 3_600_000);
  until.setSeconds(0, 0);
  const pad = (n: number) => String(n).padStart(2, '0');
  const local = `${until.getFullYear()}-${pad(until.getMonth() + 1)}-${pad(until.getDate())}T${pad(until.getHours())}:${pad(until.getMinutes())}`;
  await row(page, api.name).locator('.keep-until').fill(local);
  await row(page, api.name).locator('.keep-form button').click();
  await row(page, api.name).locator('.action-msg', { hasText: 'kept awake until' }).waitFor();
  await waitFor('the keep-awake.until label', async () => (await serviceState(api.name)).labels[LABELS.keepAwakeUntil] === until.toISOString(), 5000, 50);
  t.pass(`keep-awake.until label is ${until.toISOString()}`);
  await row(page, api.name).locator('.keep-window', { hasText: /^kept awake until / }).waitFor();
  t.match(await row(page, api.name).locator('.keep-window').textContent(), /^kept awake until .* · Mon-Fri 08:00-18:00 \(UTC\) · (awake until|next) /, 'the hold and the keep-awake window, live');
  // 256 MiB reserved, asleep since the ops sleep a moment ago: a small figure that grows live.
  const saved1 = await row(page, web.name).locator('.saved').textContent();
  t.match(saved1, /^\d+\.\d{4} GiB·h \(reservation\)$/, `what sleeping saved, and from what (${saved1})`);
  await page.waitForTimeout(5500); // the page's own redraw (every 5 s), no request
  const saved2 = await row(page, web.name).locator('.saved').textContent();
  t.ok(parseFloat(saved2 ?? '') > parseFloat(saved1 ?? ''), `and it grows while asleep (${saved1} → ${saved2})`);
  await page.screenshot({ path: screenshotPath('dashboard.png') });

  await row(page, web.name).locator('.idle-input').fill('oops');
  await row(page, web.name).locator('.idle-form button').click();
  await row(page, web.name).locator('.idle-msg[data-ok="0"]').waitFor();
  t.match(await row(page, web.name).locator('.idle-msg').textContent(), /^idleTimeout: /, 'a bad duration is refused with the reason');

  // No polling: besides the page, its assets, the login and the actions, one stream, nothing repeated.
  const reads = requests.filter((r) => r.startsWith('GET /api/'));
  t.same(reads.filter((r) => r !== 'GET /api/session'), ['GET /api/events'], `one live stream, no polling (${requests.length} requests in all)`);
  t.ok(reads.filter((r) => r === 'GET /api/session').length <= 2, 'the session is asked once per login');
  t.same(pageErrors, [], 'no script errors');
});
