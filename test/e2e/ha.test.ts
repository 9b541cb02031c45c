/**
 * Two activators sharing one Redis, all inside the swarm as in stack/activator.yml: Redis is a
 * Swarm service (sa/redis:dev, Debian's redis-server) on the shared overlay network, and each
 * activator reaches it by its service name. Two activator services stand in for the stack's two
 * replicas: on one node, two replicas of one service cannot both publish a host-mode port.
 *
 * Requests arrive at either activator, as Traefik's load balancing would send them.
 */
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { redisService } from '../helpers/redis-service.js';
import { closeWebSocket, echo, openWebSocket, send } from '../helpers/http.js';
import { createApp, recordServiceEvents, removeService, runId, serviceState, waitAsleep, watchReplicas } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('ha');
const redisName = `${run}-redis`;
const IDLE = '2s';
const IDLE_MS = 2000;
let a: RunningActivator;
let b: RunningActivator;

const redis = redisService(redisName, { 'sa.run': `${run}-infra` });
const startRedis = () => redis.start();
const stopRedis = () => redis.stop();

const activatorEnv = {
  ACTIVATOR_REDIS_URL: redis.url,
  ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms',
  ACTIVATOR_MIN_AWAKE: '0',
  ACTIVATOR_WAKE_TIMEOUT: '30s',
};

/** Sum of a metric over both activators. */
const both = async (name: string, labels: Record<string, string>) => ((await a.metric(name, labels)) ?? 0) + ((await b.metric(name, labels)) ?? 0);

t.before(async () => {
  await startRedis();
  [a, b] = await Promise.all([
    startActivator({ name: `${run}-a`, run, env: activatorEnv }),
    startActivator({ name: `${run}-b`, run, env: activatorEnv }),
  ]);
});
t.teardown(async () => {
  if (!t.passing()) {
    t.comment(`activator a:\n${await a?.logs()}`);
    t.comment(`activator b:\n${await b?.logs()}`);
  }
  await Promise.all([a?.stop(), b?.stop()]);
  await removeService(redisName);
});

t.test('a burst split across two activators wakes the app exactly once', async (t) => {
  const app = await createApp({ name: `${run}-burst`, run, env: { STARTUP_DELAY_MS: '500' }, labels: { [LABELS.idleTimeout]: '1m' } });
  t.teardown(app.remove);
  await Promise.all([a.waitForApp(app.name), b.waitForApp(app.name)]);
  const events = await recordServiceEvents(app.name);
  t.teardown(() => events.stop());

  const replies = await Promise.all(Array.from({ length: 80 }, (_, i) => send(`${(i % 2 ? a : b).url}/n/${i}`, { headers: { host: app.host } })));
  t.same(
    replies.map((r) => r.status),
    replies.map(() => 200),
    'all 80 answered 200',
  );
  t.ok(
    replies.every((r, i) => r.json<{ path: string }>().path === `/n/${i}`),
    'each by the app, for its own path',
  );
  await new Promise((r) => setTimeout(r, 300)); // late events
  t.equal(events.scaleUps(), 1, `one scale-up in Docker's events (${events.updates.length} updates)`);
  t.equal(await both('activator_wakes_total', { app: app.name }), 1, 'one of the two activators wrote it');
  t.equal((await serviceState(app.name)).replicas, 1);
});

t.test('traffic and an open WebSocket on one activator keep the app up for both; then exactly one scale-down', async (t) => {
  const app = await createApp({ name: `${run}-shared`, run, labels: { [LABELS.idleTimeout]: IDLE } });
  t.teardown(app.remove);
  await Promise.all([a.waitForApp(app.name), b.waitForApp(app.name)]);
  t.equal((await send(`${a.url}/`, { headers: { host: app.host } })).status, 200, 'woken through a');
  const events = await recordServiceEvents(app.name);
  t.teardown(() => events.stop());

  // Requests through a only, for 3 idle timeouts: b's reaper must see them through Redis.
  const watching = watchReplicas(app.name, 3 * IDLE_MS);
  let sent = 0;
  for (const until = Date.now() + 3 * IDLE_MS; Date.now() < until && sent < 30; sent++) {
    t.equal((await send(`${a.url}/tick`, { headers: { host: app.host } })).status, 200);
    await new Promise((r) => setTimeout(r, 400));
  }
  t.equal((await watching).min, 1, `never scaled down while ${sent} requests went through a`);

  // An open, silent WebSocket on a, for 3 idle timeouts.
  const ws = await openWebSocket(`ws://127.0.0.1:${a.port}/socket`, app.host);
  t.teardown(() => ws.terminate());
  const seen = await watchReplicas(app.name, 3 * IDLE_MS);
  t.equal(seen.min, 1, 'never scaled down while the WebSocket on a was open');
  t.equal(await echo(ws, 'still there?'), 'still there?', 'and the connection still works');

  await closeWebSocket(ws);
  const closedAt = Date.now();
  const downAt = await waitAsleep(app.name);
  t.comment(`scaled down ${downAt - closedAt} ms after the WebSocket closed`);
  t.ok(downAt - closedAt >= IDLE_MS - 100, 'a full idle timeout after the close');
  await new Promise((r) => setTimeout(r, 1500)); // another round of both reapers
  const downs = events.updates.filter((u) => u.replicasOld !== undefined && u.replicasNew !== undefined && u.replicasNew < u.replicasOld).length;
  t.equal(downs, 1, 'one scale-down in Docker’s events');
  t.equal(await both('activator_idle_scale_downs_total', { app: app.name }), 1, 'by one of the two activators');
});

t.test('with Redis gone, wakes still work, nothing is scaled down, and the store is named in a warning; with Redis back, idle apps sleep again', async (t) => {
  const app = await createApp({ name: `${run}-noredis`, run, labels: { [LABELS.idleTimeout]: IDLE } });
  t.teardown(app.remove);
  await Promise.all([a.waitForApp(app.name), b.waitForApp(app.name)]);
  await stopRedis();

  const res = await send(`${b.url}/`, { headers: { host: app.host } });
  t.equal(res.status, 200, 'woken through b without Redis');
  const seen = await watchReplicas(app.name, 3 * IDLE_MS);
  t.equal(seen.min, 1, 'not scaled down while the replicas cannot see each other’s traffic');
  const warned = (await b.logLines()).find((l) => l.level === 'warn' && /store unavailable/.test(String(l.msg)));
  t.ok(warned, 'b warned that the store is unavailable');
  t.match((warned?.err as { message?: string } | undefined)?.message, /^redis .+ failed: /, 'with the store’s error');

  await startRedis();
  const back = Date.now();
  await waitAsleep(app.name, 30_000);
  t.comment(`scaled down ${Date.now() - back} ms after Redis came back`);
});

t.test('with one activator gone, the other wakes apps alone', async (t) => {
  const app = await createApp({ name: `${run}-failover`, run, labels: { [LABELS.idleTimeout]: '1m' } });
  t.teardown(app.remove);
  await Promise.all([a.waitForApp(app.name), b.waitForApp(app.name)]);
  await a.stop();
  const res = await send(`${b.url}/after-a`, { headers: { host: app.host } });
  t.equal(res.status, 200);
  t.equal(res.json<{ path: string }>().path, '/after-a');
  t.equal((await serviceState(app.name)).replicas, 1);
});
