/**
 * The developer's view of a wake, on the real swarm: a real browser opens a sleeping app with the
 * waiting-page strategy, sees the page (public Host, elapsed, usual wake time) and lands on the
 * app's own answer without a reload by hand; and the headers of cold starts (Server-Timing,
 * X-Activator-Cold-Start only on responses that really waited for a wake).
 */
import t from 'tap';
import type { Browser } from 'playwright-core';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { launchChromium, screenshotPath } from '../helpers/browser.js';
import { send } from '../helpers/http.js';
import { createApp, runId, serviceState, waitAsleep, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('wp');
let activator: RunningActivator;
let browser: Browser;

t.before(async () => {
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_WAKE_TIMEOUT: '30s', ACTIVATOR_MIN_AWAKE: '0s' } });
  // The browser resolves the apps' test hosts to the activator on loopback, as DNS + Traefik would.
  browser = await launchChromium(['--host-resolver-rules=MAP *.test.local 127.0.0.1']);
});
t.teardown(async () => {
  await browser?.close();
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

const sleepNow = async (service: string) => {
  const r = await activator.adminFetch(`/api/apps/${service}/sleep`, { method: 'POST' });
  if (r.status !== 200) throw new Error(`sleep: ${r.status} ${await r.text()}`);
  await waitAsleep(service);
};

t.test('a browser opens a sleeping app: the waiting page, then the app itself, with no reload by hand', async (t) => {
  // The public Host differs from the service name, which the page must not show.
  const host = `docs-${run}.pr-7.test.local`;
  const app = await createApp({ name: `${run}-page`, run, host, env: { STARTUP_DELAY_MS: '2500' }, labels: { [LABELS.strategy]: 'waiting-page' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);

  // One wake and back to sleep first, so the app has a usual wake time.
  const first = await activator.adminFetch(`/api/apps/${app.name}/wake`, { method: 'POST' });
  t.equal(first.status, 200);
  const firstMs = ((await first.json()) as { ms: number }).ms;
  await sleepNow(app.name);

  const context = await browser.newContext({ viewport: { width: 900, height: 560 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const documents: Array<{ status: number; cold: string | undefined }> = [];
  page.on('response', (r) => {
    if (r.request().resourceType() === 'document') documents.push({ status: r.status(), cold: r.headers()['x-activator-cold-start'] });
  });
  const url = `http://${host}:${activator.port}/guide?page=2`;
  const opened = Date.now();
  const response = await page.goto(url);
  t.equal(response?.status(), 503, 'the waiting page first (503, so nothing caches it)');
  t.match(await page.title(), `Waking up ${host}`);
  t.match(await page.locator('main').textContent(), new RegExp(`Waking up ${host.replace(/\./g, '\\.')}`), 'shows the public Host');
  t.notMatch(await page.content(), app.name, 'never the internal service name');
  t.match(await page.locator('main').textContent(), /it usually takes about \d+(\.\d)? s/, `and the usual wake time (the earlier wake took ${firstMs} ms)`);
  const elapsed1 = await page.locator('[data-sa="elapsed"]').textContent();
  await page.waitForTimeout(1200);
  const elapsed2 = await page.locator('[data-sa="elapsed"]').textContent();
  t.not(elapsed1, elapsed2, `the elapsed time runs (${elapsed1} → ${elapsed2})`);
  await page.screenshot({ path: screenshotPath('waiting-page.png') });

  // The page reloads itself once the app answers: the app's own echo of this URL.
  await page.locator('body', { hasText: '"method"' }).waitFor({ timeout: 30_000 });
  const landedMs = Date.now() - opened;
  const echo = JSON.parse(await page.locator('body').innerText()) as { path: string; query: Record<string, string>; headers: Record<string, string> };
  t.equal(echo.path, '/guide', `landed on the app itself after ${landedMs} ms`);
  t.same(echo.query, { page: '2' });
  t.equal(echo.headers.host, `${host}:${activator.port}`, 'with the Host the browser asked for');
  t.equal(page.url(), url, 'at the same URL');
  t.same(documents.map((d) => d.status), [503, 200], 'two documents: the waiting page, then the app');
  t.equal((await serviceState(app.name)).replicas, 1);
});

t.test('cold-start headers: Server-Timing on responses that waited for a wake, nothing on those that did not', async (t) => {
  const app = await createApp({ name: `${run}-timing`, run, env: { STARTUP_DELAY_MS: '800' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);

  const headers = { host: app.host };
  const a = send(`${activator.url}/a`, { headers });
  await waitFor('the wake to start', async () => (await serviceState(app.name)).replicas === 1, 5000, 10);
  const b = send(`${activator.url}/b`, { headers }); // joins the wake already under way: it waits too
  const [ra, rb] = await Promise.all([a, b]);
  for (const [name, r] of [['first', ra], ['joined', rb]] as const) {
    t.equal(r.status, 200);
    t.equal(r.header('x-activator-cold-start'), 'true', `${name}: marked cold`);
    const dur = Number(/^wake;dur=(\d+)$/.exec(r.header('server-timing') ?? '')?.[1]);
    t.ok(dur >= 300 && dur <= r.ms + 5, `${name}: Server-Timing wake;dur=${dur} (answered in ${Math.round(r.ms)} ms)`);
  }
  const c = await send(`${activator.url}/c`, { headers });
  t.equal(c.header('x-activator-cold-start'), undefined, 'after the app was ready: not cold');
  t.equal(c.header('server-timing'), undefined);

  // A second activator that never saw the app asleep (as after a restart): it must find the task
  // and probe it, but nobody waited for a wake.
  const fresh = await startActivator({ name: `${run}-activator2`, run });
  t.teardown(() => fresh.stop());
  await fresh.waitForApp(app.name);
  const d = await send(`${fresh.url}/d`, { headers });
  t.equal(d.status, 200);
  t.equal(d.header('x-activator-cold-start'), undefined, 'an app that was awake all along: not a cold start');
  t.equal(d.header('server-timing'), undefined);
});
