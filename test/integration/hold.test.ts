/**
 * Hold bounds and the waiting page, with the activator in-process against the real swarm.
 * The app never gets healthy (so the host never probes a task address), and wakes end in 504:
 * these tests are about
 * what happens while requests are held, not about the proxying (test/e2e covers that).
 */
import t from 'tap';
import pino from 'pino';
import { createActivator } from '../../src/activator.js';
import { loadConfig } from '../../src/config.js';
import { adminTokenEnv } from '../helpers/admin-tokens.js';
import { LABELS } from '../../src/labels.js';
import { send } from '../helpers/http.js';

// The host cannot (and must not try to) reach overlay task addresses: an app whose task stays
// `starting` and that waits for Swarm's health (ready=healthy) is never probed, so an in-process
// activator never sends traffic to a task IP.
const NO_PROBE_IMAGE = 'sa/never-healthy:dev';
import { DOCKER_HOST, createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';

async function inProcess(t: { teardown(fn: () => unknown): void }, run: string, env: Record<string, string>) {
  const config = loadConfig({
    ...adminTokenEnv(),
    ACTIVATOR_DOCKER_HOST: DOCKER_HOST,
    ACTIVATOR_HOST: '127.0.0.1',
    ACTIVATOR_PORT: '0',
    ACTIVATOR_ADMIN_PORT: '0',
    ACTIVATOR_SELECTOR: `sa.run=${run}`,
    ACTIVATOR_IDLE_CHECK_INTERVAL: '1h',
    ...env,
  });
  const activator = await createActivator(config, pino({ level: 'silent' }), { defaultMetrics: false });
  t.teardown(() => activator.close());
  await activator.listen();
  const addr = activator.proxyApp.server.address();
  return { activator, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}


t.test('held requests over the per-app bound get 503 with Retry-After at once', async (t) => {
  const run = runId('hold');
  const { activator, url } = await inProcess(t, run, { ACTIVATOR_MAX_HELD_PER_APP: '3', ACTIVATOR_RETRY_AFTER: '9' });
  const app = await createApp({ name: `${run}-app`, run, image: NO_PROBE_IMAGE, labels: { [LABELS.wakeTimeout]: '3s', [LABELS.ready]: 'healthy' } });
  t.teardown(app.remove);
  await waitFor('discovery', async () => activator.registry.byHost(app.host) !== undefined, 10_000, 20);

  const held = Array.from({ length: 3 }, () => send(`${url}/`, { headers: { host: app.host } }));
  await waitFor('3 held', async () => (await activator.metrics.held.get()).values.find((v) => v.labels.app === app.name)?.value === 3, 5000, 10);
  const started = Date.now();
  const over = await send(`${url}/`, { headers: { host: app.host } });
  t.equal(over.status, 503);
  t.equal(over.header('x-activator-error'), 'SA_TOO_MANY_HELD');
  t.equal(over.header('retry-after'), '9');
  t.ok(Date.now() - started < 1000, 'answered at once, not held');
  const results = await Promise.all(held);
  t.same(results.map((r) => r.status), [504, 504, 504], 'the held ones are all answered (504: the task never gets healthy)');
  await waitFor('scaled back', async () => (await serviceState(app.name)).replicas === 0, 10_000);
});

t.test('waiting-page strategy: browsers get a page at once, API clients block', async (t) => {
  const run = runId('page');
  const { activator, url } = await inProcess(t, run, {});
  const app = await createApp({ name: `${run}-app`, run, image: NO_PROBE_IMAGE, labels: { [LABELS.strategy]: 'waiting-page', [LABELS.wakeTimeout]: '2s', [LABELS.ready]: 'healthy' } });
  t.teardown(app.remove);
  await waitFor('discovery', async () => activator.registry.byHost(app.host) !== undefined, 10_000, 20);

  const started = Date.now();
  const page = await send(`${url}/dashboard`, { headers: { host: app.host, accept: 'text/html,application/xhtml+xml' } });
  t.ok(Date.now() - started < 1000, 'the page comes at once');
  t.equal(page.status, 503);
  t.equal(page.header('retry-after'), '2');
  t.match(page.text(), /Waking up <b>.*<\/b>/);
  t.match(page.text(), /__activator\/wait/, 'the page polls the wait path');
  await waitFor('wake started', async () => (await serviceState(app.name)).replicas === 1, 5000, 20);

  // The page's poll: held until the wake settles, then answered (here with the wake's failure).
  const wait = await send(`${url}/__activator/wait`, { headers: { host: app.host } });
  t.equal(wait.status, 504);
  t.equal(wait.header('x-activator-error'), 'SA_WAKE_TIMEOUT');
});
