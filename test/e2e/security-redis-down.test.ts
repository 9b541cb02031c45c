/**
 * Security matrix row "Redis unreachable for 30 s under load" (docs/security.md), with a Redis of
 * the test's own (a Swarm service from sa/redis:dev, scaled to 0 for the outage; never the shared
 * Redis). Load: a round of requests every 250 ms to an awake app, and a sleeping app woken in the
 * middle of the outage. An idle app must not be scaled down blind (no lock, no shared activity)
 * and must sleep once Redis is back. SA_OUTAGE_MS shortens the outage for a quick local run.
 */
import t from 'tap';
import Docker from 'dockerode';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { send } from '../helpers/http.js';
import { describeLoad, loadDuring } from '../helpers/outage-load.js';
import { SA_NETWORK, createApp, docker, removeService, runId, runningTasks, serviceState, waitAsleep, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('rddown');
const OUTAGE_MS = Number(process.env.SA_OUTAGE_MS ?? 30_000);
const redisName = `${run}-redis`;
let activator: RunningActivator;

async function scaleRedis(replicas: number): Promise<void> {
  const svc = docker.getService(redisName);
  const spec = (await svc.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
  await svc.update({ _query: { version: spec.Version.Index }, _body: { ...spec.Spec, Mode: { Replicated: { Replicas: replicas } } } });
  if (replicas === 0) await waitFor('Redis gone', async () => (await docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${redisName}`] } })).length === 0, 30_000, 100);
  else await waitFor('Redis running', async () => (await runningTasks(redisName)).length > 0, 30_000, 100);
}

t.before(async () => {
  await docker.createService({
    Name: redisName,
    Labels: { 'sa.test': '1', 'sa.run': `${run}-infra` },
    TaskTemplate: { ContainerSpec: { Image: 'sa/redis:dev', StopGracePeriod: 1e9 }, RestartPolicy: { Condition: 'any', Delay: 200e6 }, Networks: [{ Target: SA_NETWORK }] },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Mode: 'dnsrr' },
  } as unknown as Docker.CreateServiceOptions);
  await waitFor('Redis running', async () => (await runningTasks(redisName))[0]?.ip, 30_000, 100);
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_REDIS_URL: `redis://${redisName}:6379`, ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms', ACTIVATOR_MIN_AWAKE: '0', ACTIVATOR_WAKE_TIMEOUT: '20s' } });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
  await removeService(redisName);
});

t.test('Redis unreachable for 30 s under load: every request answered, no blind scale-down, then full recovery', async (t) => {
  const busy = await createApp({ name: `${run}-busy`, run, replicas: 1, labels: { [LABELS.idleTimeout]: '1h' } });
  const idle = await createApp({ name: `${run}-idle`, run, replicas: 1, labels: { [LABELS.idleTimeout]: '12s' } });
  const asleep = await createApp({ name: `${run}-asleep`, run });
  t.teardown(async () => {
    await Promise.all([busy.remove(), idle.remove(), asleep.remove()]);
  });
  await waitFor('apps running', async () => (await runningTasks(busy.name)).length > 0 && (await runningTasks(idle.name)).length > 0, 30_000, 100);
  await Promise.all([activator.waitForApp(busy.name), activator.waitForApp(idle.name), activator.waitForApp(asleep.name)]);
  await waitFor('busy app answering', async () => (await send(`${activator.url}/`, { headers: { host: busy.host } })).status === 200, 30_000, 200);

  await scaleRedis(0);
  const cutAt = Date.now();
  // Halfway through, a sleeping app is woken: wakes do not need Redis.
  const wake = new Promise<number>((resolve) => setTimeout(() => void send(`${activator.url}/wake`, { headers: { host: asleep.host }, timeoutMs: 25_000 }).then((r) => resolve(r.status), () => resolve(0)), OUTAGE_MS / 2));
  const load = await loadDuring([{ name: 'busy', url: activator.url, host: busy.host }], { forMs: OUTAGE_MS, everyMs: 250, maxRounds: 200, timeoutMs: 15_000 });
  const wokeDuring = await wake;
  const idleAtEnd = (await serviceState(idle.name)).replicas;
  const outageMs = Date.now() - cutAt;
  await scaleRedis(1);
  const backAt = Date.now();
  await waitAsleep(idle.name, 30_000);
  const sleptAfterMs = Date.now() - backAt;
  t.comment(`figure: Redis cut off for ${Math.round(outageMs / 1000)} s: ${load.sent} requests, ${describeLoad(load)}; slowest ${Math.round(load.slowestMs)} ms; a wake during it: ${wokeDuring}; the idle app (12 s timeout) stayed at ${idleAtEnd} replica(s) during the outage and slept ${sleptAfterMs} ms after Redis was back`);

  const busyAnswers = load.byTarget.get('busy');
  t.equal(busyAnswers?.get('no answer') ?? 0, 0, 'no request unanswered');
  t.equal(busyAnswers?.get(200), load.sent, 'every request answered 200 (Redis is not on the request path)');
  t.ok(load.sent >= Math.min(40, (OUTAGE_MS / 250) * 0.8), `under load: ${load.sent} requests`);
  t.equal(wokeDuring, 200, 'a sleeping app woke during the outage');
  t.equal(idleAtEnd, 1, 'no scale-down without the shared store (other replicas’ activity is unknown)');
  t.ok(sleptAfterMs < 20_000, `full recovery: the idle app slept ${sleptAfterMs} ms after Redis was back`);
  const warned = (await activator.logLines()).filter((l) => /store unavailable/.test(String(l.msg)));
  t.ok(warned.length >= 1 && warned.length <= 10, `the outage is logged, bounded: ${warned.length} line(s)`);
  const apps = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; state: string }>;
  t.notOk(apps.some((a) => a.state === 'waking'), 'no app stuck waking');
});
