/**
 * Two activator replicas sharing the real Redis, against the real swarm: in-process reapers with
 * their own registries, RedisStores and own-traffic trackers (the wake path is not involved, so
 * its coordinator is a stub that never wakes).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import t from 'tap';
import { AppRegistry } from '../../src/discovery/app-registry.js';
import { IdleReaper } from '../../src/idle/reaper.js';
import { OwnTrafficSource } from '../../src/idle/sources/own-traffic.js';
import { OwnTraffic } from '../../src/idle/traffic.js';
import { LABELS } from '../../src/labels.js';
import { Metrics } from '../../src/metrics.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { DockerodeSwarm } from '../../src/swarm/dockerode-swarm.js';
import { DOCKER_HOST, REDIS_URL, createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';

const run = runId('rep');
const log = pino({ level: 'silent' });
const prefix = `sa-test:${randomUUID()}:`;

interface Replica {
  name: string;
  registry: AppRegistry;
  traffic: OwnTraffic;
  metrics: Metrics;
  reaper: IdleReaper;
  store: RedisStore;
}

async function replica(name: string, checkIntervalMs: number): Promise<Replica> {
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const registry = new AppRegistry({
    swarm,
    defaults: { strategy: 'blocking', wakeTimeoutMs: 30_000, idleTimeoutMs: 3_600_000, minAwakeMs: 0, network: undefined },
    selector: { key: 'sa.run', value: run },
    resyncIntervalMs: 60_000,
    log,
  });
  await registry.start();
  const traffic = new OwnTraffic();
  const metrics = new Metrics({ defaultMetrics: false });
  const store = new RedisStore({ url: REDIS_URL as string, prefix });
  const coordinator = { isWaking: () => false, invalidate: () => undefined };
  const reaper = new IdleReaper({ registry, swarm, coordinator, store, sources: [new OwnTrafficSource(traffic)], checkIntervalMs, log, metrics });
  return { name, registry, traffic, metrics, reaper, store };
}

const skip = REDIS_URL ? false : 'REDIS_URL is not set: run scripts/redis-up.sh';
let a: Replica;
let b: Replica;

t.before(async () => {
  if (skip) return;
  a = await replica('a', 250);
  b = await replica('b', 250);
});
t.teardown(async () => {
  for (const r of [a, b]) {
    if (!r) continue;
    await r.reaper.stop();
    await r.registry.stop();
    await r.store.close();
  }
  if (REDIS_URL) {
    const raw = new Redis(REDIS_URL);
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    await raw.quit();
  }
});

const scaleDowns = async (r: Replica, app: string) => (await r.metrics.idleScaleDowns.get()).values.find((v) => v.labels.app === app)?.value ?? 0;
const discovered = (app: string) => waitFor(`${app} in both registries`, async () => a.registry.byService(app) !== undefined && b.registry.byService(app) !== undefined, 10_000, 20);

t.test('two replicas checking at the same moment: exactly one scale-down', { skip }, async (t) => {
  const app = await createApp({ name: `${run}-once`, run, replicas: 1, labels: { [LABELS.idleTimeout]: '2s' } });
  t.teardown(app.remove);
  await discovered(app.name);
  const before = await serviceState(app.name);
  // Checks driven by hand, both replicas at once, every 100 ms, until the app is down.
  const outcomes: string[] = [];
  await waitFor('scaled down', async () => {
    const [ra, rb] = await Promise.all([a.reaper.check(), b.reaper.check()]);
    for (const r of [...ra, ...rb]) if (r.app === app.name && r.outcome) outcomes.push(r.outcome);
    return (await serviceState(app.name)).replicas === 0;
  }, 15_000, 100);
  t.equal(outcomes.filter((o) => o === 'scaled-down').length, 1, `one replica scaled it down (outcomes: ${outcomes.join(', ')})`);
  t.equal((await scaleDowns(a, app.name)) + (await scaleDowns(b, app.name)), 1, 'one idle scale-down counted across both');
  const after = await serviceState(app.name);
  t.match(after.labels[LABELS.stateReason], /^idle for /);
  t.ok(after.version > before.version);
});

t.test("an open request on one replica keeps the other from scaling the app down (through Redis)", { skip }, async (t) => {
  const app = await createApp({ name: `${run}-open`, run, replicas: 1, labels: { [LABELS.idleTimeout]: '2s' } });
  t.teardown(app.remove);
  await discovered(app.name);
  a.reaper.start();
  b.reaper.start();
  const end = a.traffic.begin(app.name); // a long request (or WebSocket) through replica A
  const until = Date.now() + 5000;
  let min = Infinity;
  while (Date.now() < until) {
    min = Math.min(min, (await serviceState(app.name)).replicas);
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(min, 1, 'neither replica scaled it down during 2.5 idle timeouts');
  t.equal(await scaleDowns(b, app.name), 0);
  end();
  const closedAt = Date.now();
  await waitFor('scaled down after the request ended', async () => (await serviceState(app.name)).replicas === 0, 10_000, 50);
  const after = Date.now() - closedAt;
  t.comment(`scaled down ${after} ms after the request on replica A ended`);
  t.ok(after >= 1900, 'a full idle timeout after it ended');
  t.equal((await scaleDowns(a, app.name)) + (await scaleDowns(b, app.name)), 1, 'exactly once');
});
