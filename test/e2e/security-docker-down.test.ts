/**
 * Security matrix row "Docker unreachable for 30 s under load" (docs/security.md): the activator
 * reaches Docker only through the API proxy (as in stack/activator.yml), and the proxy is scaled to
 * 0 for the outage (never the shared dockerd). Load: a round of requests every 250 ms to an awake
 * app (fast path) and a sleeping one (needs Docker), each with a 15 s limit.
 * SA_OUTAGE_MS shortens the outage for a quick local run.
 */
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { startDockerApiProxy, type DockerApiProxy } from '../helpers/docker-api-proxy.js';
import { send } from '../helpers/http.js';
import { describeLoad, loadDuring } from '../helpers/outage-load.js';
import { createApp, runId, runningTasks, serviceState, waitFor } from '../helpers/swarm.js';

const run = runId('dkdown');
const OUTAGE_MS = Number(process.env.SA_OUTAGE_MS ?? 30_000);
let proxy: DockerApiProxy;
let activator: RunningActivator;

t.before(async () => {
  proxy = await startDockerApiProxy(`${run}-dockerapi`, run);
  activator = await startActivator({ name: `${run}-activator`, run, dockerSocket: false, env: { ACTIVATOR_DOCKER_HOST: proxy.dockerHost, ACTIVATOR_WAKE_TIMEOUT: '20s', ACTIVATOR_IDLE_TIMEOUT: '1h' } });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
  await proxy?.remove();
});

t.test('Docker unreachable for 30 s under load: clear 503s, then full recovery; no stuck state; no request unanswered', async (t) => {
  const up = await createApp({ name: `${run}-up`, run, replicas: 1 });
  const asleep = await createApp({ name: `${run}-asleep`, run });
  t.teardown(async () => {
    await up.remove();
    await asleep.remove();
  });
  await waitFor('awake app running', async () => (await runningTasks(up.name)).length > 0, 30_000, 100);
  await Promise.all([activator.waitForApp(up.name), activator.waitForApp(asleep.name)]);
  await waitFor('awake app answering', async () => (await send(`${activator.url}/`, { headers: { host: up.host } })).status === 200, 30_000, 200);

  await proxy.scale(0);
  const cutAt = Date.now();
  const load = await loadDuring(
    [
      { name: 'awake', url: activator.url, host: up.host },
      { name: 'asleep', url: activator.url, host: asleep.host },
    ],
    { forMs: OUTAGE_MS, everyMs: 250, maxRounds: 200, timeoutMs: 15_000 },
  );
  const outageMs = Date.now() - cutAt;
  await proxy.scale(1);
  const backAt = Date.now();
  let attempts = 0;
  const woken = await waitFor(
    'the sleeping app wakes once Docker is back',
    async () => {
      attempts++;
      const r = await send(`${activator.url}/after`, { headers: { host: asleep.host }, timeoutMs: 25_000 });
      return r.status === 200 ? r : undefined;
    },
    40_000,
    500,
  );
  const recoveredMs = Date.now() - backAt;
  t.comment(`figure: Docker cut off for ${Math.round(outageMs / 1000)} s: ${load.sent} requests, ${describeLoad(load)}; slowest answer ${Math.round(load.slowestMs)} ms; the sleeping app woke ${recoveredMs} ms after Docker was back (${attempts} attempt(s))`);

  const awake = load.byTarget.get('awake');
  const sleeping = load.byTarget.get('asleep');
  t.equal(load.byTarget.get('awake')?.get('no answer') ?? 0, 0, 'no request to the awake app unanswered');
  t.equal(sleeping?.get('no answer') ?? 0, 0, 'no request to the sleeping app unanswered');
  t.equal(awake?.get(200), [...(awake?.values() ?? [])].reduce((a, b) => a + b, 0), 'the awake app answered every request (fast path, no Docker needed)');
  t.equal(sleeping?.get('503 SA_DOCKER_UNAVAILABLE'), [...(sleeping?.values() ?? [])].reduce((a, b) => a + b, 0), 'the sleeping app: 503 SA_DOCKER_UNAVAILABLE for every request');
  t.equal(load.unclear, 0, 'every 503 with Retry-After and its code');
  t.ok(load.sent >= Math.min(40, (OUTAGE_MS / 250) * 2 * 0.8), `under load: ${load.sent} requests`);
  t.equal(woken.status, 200, 'full recovery: the sleeping app wakes');
  t.equal((await serviceState(asleep.name)).replicas, 1);
  const apps = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; state: string }>;
  t.notOk(apps.some((a) => a.state === 'waking'), 'no app stuck waking');
  t.equal((await activator.metric('activator_held_requests')) ?? 0, 0, 'nothing left held');
  t.equal((await send(`${activator.url}/`, { headers: { host: up.host } })).status, 200, 'the awake app still answers');
});
