/**
 * WakeCoordinator's logic with a hand-written in-memory SwarmClient. The "task" is a real HTTP
 * server on 127.0.0.1, so readiness probing is real; the swarm is not (e2e tests cover that).
 */
import { createServer, type Server } from 'node:http';
import t from 'tap';
import pino from 'pino';
import { AppRegistry } from '../../src/discovery/app-registry.js';
import { LABELS } from '../../src/labels.js';
import { Metrics } from '../../src/metrics.js';
import { MemorySwarm } from '../helpers/memory-swarm.js';
import { WakeCoordinator } from '../../src/wake/coordinator.js';
import { ReadinessProbe } from '../../src/wake/readiness.js';

const log = pino({ level: 'silent' });

async function origin(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

async function setup(t: { teardown(fn: () => unknown): void }, swarm: MemorySwarm) {
  const registry = new AppRegistry({ swarm, defaults: { strategy: 'blocking', wakeTimeoutMs: 2000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: 'net' }, resyncIntervalMs: 60_000, log });
  await registry.start();
  const readiness = new ReadinessProbe(swarm, 500);
  const coordinator = new WakeCoordinator({ registry, swarm, readiness, metrics: new Metrics({ defaultMetrics: false }), log, probeIntervalMs: 10 });
  t.teardown(async () => {
    await registry.stop();
    await readiness.close();
  });
  return { registry, coordinator };
}

t.test('fifty concurrent requests: one scale-up, all get the ready endpoint, then the fast path', async (t) => {
  const { server, port } = await origin();
  t.teardown(() => server.close());
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.behaviour.set('web', { port, startMs: 50 });
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  const eps = await Promise.all(Array.from({ length: 50 }, () => coordinator.ensureReady(entry, new AbortController().signal)));
  t.equal(swarm.calls.filter((c) => c === 'scale web 1').length, 1, 'one scale-up');
  t.ok(eps.every((e) => e.ip === '127.0.0.1' && e.port === port));
  t.match(swarm.services.get('web')?.labels[LABELS.stateReason], /^woken: request/);
  const before = swarm.calls.length;
  await coordinator.ensureReady(entry, new AbortController().signal);
  t.equal(swarm.calls.length, before, 'fast path: no swarm call');
});

t.test('a waiter that leaves does not cancel the wake for the others', async (t) => {
  const { server, port } = await origin();
  t.teardown(() => server.close());
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.behaviour.set('web', { port, startMs: 200 });
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  const leaving = new AbortController();
  const a = coordinator.ensureReady(entry, leaving.signal);
  const b = coordinator.ensureReady(entry, new AbortController().signal);
  setTimeout(() => leaving.abort(new Error('client gone')), 20);
  await t.rejects(a, /client gone/);
  t.equal((await b).port, port, 'the other waiter is served');
});

t.test('a task failure after the scale-up: AppFailedError naming it, group scaled back', async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: '80', [LABELS.group]: 'shop' });
  swarm.add('worker', { [LABELS.group]: 'shop' });
  swarm.behaviour.set('web', { fail: 'task: non-zero exit (3)' });
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_APP_FAILED', message: /non-zero exit \(3\)/ });
  t.ok(swarm.calls.includes('scale worker 1'), 'the worker of the group was woken too');
  t.equal(swarm.services.get('web')?.replicas, 0, 'web scaled back');
  t.equal(swarm.services.get('worker')?.replicas, 0, 'worker scaled back');
  t.match(swarm.services.get('web')?.labels[LABELS.stateReason], /wake failed: SA_APP_FAILED/);
  t.notOk(coordinator.isWaking('web'), 'not stuck waking: the next request retries');
});

t.test('failures of tasks from before the wake are old news', async (t) => {
  const { server, port } = await origin();
  t.teardown(() => server.close());
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.tasks.get('id-web')?.push({ id: 'old', serviceId: 'id-web', nodeId: 'n1', state: 'failed', desiredState: 'shutdown', error: 'task: non-zero exit (1)', message: '', exitCode: 1, containerId: undefined, createdAt: '2020-01-01T00:00:00Z', addresses: [] });
  swarm.behaviour.set('web', { port });
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  t.equal((await coordinator.ensureReady(entry, new AbortController().signal)).port, port);
});

t.test('never ready: WakeTimeoutError after the wake timeout, scaled back, then a retry works', async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: '1', [LABELS.wakeTimeout]: '300ms' });
  swarm.behaviour.set('web', { port: 1 }); // nothing listens on port 1: the probe never succeeds
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  const started = Date.now();
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_WAKE_TIMEOUT', message: /within 300 ms.*probe: ECONNREFUSED/ });
  t.ok(Date.now() - started >= 290, 'waited the whole timeout');
  t.equal(swarm.services.get('web')?.replicas, 0, 'scaled back to 0');
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_WAKE_TIMEOUT' });
  t.equal(swarm.calls.filter((c) => c === 'scale web 1').length, 2, 'a later request starts a new wake');
});

t.test('a scale-down from another replica that lands under a wake is undone', async (t) => {
  const { server, port } = await origin();
  t.teardown(() => server.close());
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port), [LABELS.wakeTimeout]: '5s' });
  swarm.behaviour.set('web', { port, startMs: 10_000 }); // the first task would take long...
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  const ready = coordinator.ensureReady(entry, new AbortController().signal);
  await new Promise((r) => setTimeout(r, 50));
  swarm.behaviour.set('web', { port, startMs: 20 }); // ...and the re-scaled one starts at once
  await swarm.scaleService('web', 0); // the other replica's scale-down lands after our scale-up
  t.equal((await ready).port, port, 'ready after all');
  t.equal(swarm.calls.filter((c) => c === 'scale web 1').length, 2, 'scaled up a second time');
});
