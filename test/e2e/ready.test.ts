/**
 * When a woken task may serve (issue 14, part 0), on the real swarm: the HTTP probe is the proof
 * that the app serves, so a pending HEALTHCHECK (Swarm's `starting`) does not hold the wake;
 * `swarm-activator.ready=healthy` keeps Swarm's rule; and a task that served while `starting` and
 * then failed its health check is handled like any other lost task.
 */
import t from 'tap';
import { send } from '../helpers/http.js';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { createApp, docker, runId, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';
import { STARTING_SETTLE_MS } from '../../src/wake/readiness.js';

const run = runId('ready');
let activator: RunningActivator;

t.before(async () => {
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_WAKE_TIMEOUT: '60s' } });
});
t.teardown(() => activator?.stop());

const headers = (host: string) => ({ host, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': host });

interface RawTask {
  ID: string;
  DesiredState: string;
  Status: { State: string; Timestamp: string };
}
async function tasksOf(service: string): Promise<RawTask[]> {
  return (await docker.listTasks({ filters: { service: [service] } })) as RawTask[];
}

t.test('a 30 s HEALTHCHECK does not hold the wake: answered while Swarm still says starting', async (t) => {
  const app = await createApp({ name: `${run}-slowhc`, run, healthIntervalMs: 30_000 });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const started = Date.now();
  const res = await send(`${activator.url}/`, { headers: headers(app.host) });
  const elapsed = Date.now() - started;
  const live = (await tasksOf(app.name)).filter((task) => task.DesiredState === 'running');
  t.equal(res.status, 200, 'the app answered');
  t.equal(res.header('x-activator-cold-start'), 'true', 'through a wake');
  t.same(live.map((task) => task.Status.State), ['starting'], 'its task is still `starting`: the first health check is 30 s away');
  t.ok(elapsed < 20_000, `answered well before the 30 s health interval (${elapsed} ms)`);
  // The activator heard the container start (this engine's events), so it did not wait out the
  // settle time a starting task of another node gets (STARTING_SETTLE_MS after `starting`).
  const sinceStarting = started + elapsed - Date.parse(live[0]?.Status.Timestamp ?? '');
  t.ok(sinceStarting < STARTING_SETTLE_MS, `answered ${sinceStarting} ms after the task became starting: its container start was heard, no settle wait`);
  t.comment(`cold start with a 30 s HEALTHCHECK interval: ${elapsed} ms (${sinceStarting} ms after 'starting')`);
});

t.test('ready=healthy waits for Swarm: not answered before the first health check passes', async (t) => {
  const app = await createApp({ name: `${run}-healthy`, run, healthIntervalMs: 2_000, labels: { [LABELS.ready]: 'healthy' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const started = Date.now();
  const res = await send(`${activator.url}/`, { headers: headers(app.host) });
  const elapsed = Date.now() - started;
  const live = (await tasksOf(app.name)).filter((task) => task.DesiredState === 'running');
  t.equal(res.status, 200, 'the app answered');
  t.same(live.map((task) => task.Status.State), ['running'], 'Swarm says running (healthy)');
  t.ok(elapsed >= 2_000, `not before the first health check, 2 s after the container started (${elapsed} ms)`);
  t.comment(`cold start with ready=healthy and a 2 s health interval: ${elapsed} ms`);
});

t.test('a task that served while starting, then failed its health check, is a lost task: GETs go to its replacement', async (t) => {
  // The health check asks /status/503: Swarm kills the task after 3 failed checks 3 s apart and starts another.
  const app = await createApp({ name: `${run}-unhealthy`, run, healthIntervalMs: 3_000, env: { HEALTH_PATH: '/status/503' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const first = await send(`${activator.url}/`, { headers: headers(app.host) });
  t.equal(first.status, 200, 'served by the first task while its health check is pending');
  const firstHost = first.json<{ hostname: string }>().hostname;
  const firstTask = (await tasksOf(app.name)).find((task) => task.DesiredState === 'running');
  t.ok(firstTask, 'the first task');

  // Swarm kills it as unhealthy and starts a replacement; wait until that one is starting.
  const replacement = await waitFor(
    'the unhealthy task replaced',
    async () => {
      const tasks = await tasksOf(app.name);
      const old = tasks.find((task) => task.ID === firstTask?.ID);
      const next = tasks.find((task) => task.ID !== firstTask?.ID && task.DesiredState === 'running' && task.Status.State === 'starting');
      return old && old.DesiredState !== 'running' && next ? { old: old.Status.State, next } : undefined;
    },
    60_000,
    200,
  );
  t.comment(`first task ended as ${replacement.old}; replacement ${replacement.next.ID.slice(0, 12)} ${replacement.next.Status.State}`);

  const started = Date.now();
  const second = await send(`${activator.url}/again`, { headers: headers(app.host) });
  const elapsed = Date.now() - started;
  t.equal(second.status, 200, 'the GET is answered, not lost with the dead task');
  t.not(second.json<{ hostname: string }>().hostname, firstHost, 'by the replacement task');
  t.ok(elapsed < 15_000, `within the lost-task bound (${elapsed} ms)`);
  t.comment(`GET after the unhealthy task was replaced: answered in ${elapsed} ms`);
});
