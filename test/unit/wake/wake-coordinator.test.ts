/**
 * WakeCoordinator's logic with a hand-written in-memory SwarmClient. The "task" is a real HTTP
 * server on 127.0.0.1, so readiness probing is real; the swarm is not (e2e tests cover that).
 */
import { createServer, type Server } from 'node:http';
import t from 'tap';
import pino from 'pino';
import { LABELS } from '../../../src/labels.js';
import { Metrics } from '../../../src/metrics.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';
import { wakeStack } from '../../helpers/wake-stack.js';
import { SwarmUnavailableError, type TaskInfo } from '../../../src/swarm/swarm.js';
import { WakeCoordinator } from '../../../src/wake/coordinator.js';
import { ReadinessProbe } from '../../../src/wake/readiness.js';

const log = pino({ level: 'silent' });

async function origin(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

function setup(t: { teardown(fn: () => unknown): void }, swarm: MemorySwarm, retryBackoffMs = 0) {
  return wakeStack(t, swarm, { wakeTimeoutMs: 2000, probeIntervalMs: 10, retryBackoffMs });
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
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_APP_FAILED', detail: /non-zero exit \(3\)/, message: /^app web failed to start \(/ });
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
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_WAKE_TIMEOUT', message: /within 300 ms$/, detail: /probe: ECONNREFUSED/ });
  t.ok(Date.now() - started >= 290, 'waited the whole timeout');
  t.equal(swarm.services.get('web')?.replicas, 0, 'scaled back to 0');
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_WAKE_TIMEOUT' });
  t.equal(swarm.calls.filter((c) => c === 'scale web 1').length, 2, 'a later request starts a new wake');
});

t.test('a failed wake scales back only what it scaled up: an app someone else woke keeps its replicas', async (t) => {
  const swarm = new MemorySwarm();
  // "web" was scaled up by an operator (1 running task) but its probe fails; its worker sleeps.
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: '1', [LABELS.wakeTimeout]: '200ms', [LABELS.group]: 'g' }, 1);
  swarm.add('worker', { [LABELS.group]: 'g' }, 0);
  swarm.tasks.set('id-web', [{ id: 'task-web-ops', serviceId: 'id-web', nodeId: 'n1', state: 'running', desiredState: 'running', error: undefined, message: '', exitCode: undefined, containerId: 'c0', createdAt: new Date().toISOString(), addresses: [{ networkId: 'net', networkName: 'net', ip: '127.0.0.1' }] }]);
  swarm.behaviour.set('worker', { startMs: 10_000 });
  const { registry, coordinator } = await setup(t, swarm);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_WAKE_TIMEOUT' });
  t.equal(swarm.services.get('web')?.replicas, 1, 'the running app keeps its replica');
  t.equal(swarm.calls.filter((c) => c === 'scale web 0').length, 0, 'no scale-down of web');
  t.equal(swarm.services.get('worker')?.replicas, 0, 'the worker this wake scaled up went back');
  t.equal(swarm.calls.filter((c) => c === 'scale worker 1').length, 1, 'the worker was scaled up once');
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

t.test('after a failed wake, requests get that failure at once (no Docker call) until the backoff ends; it doubles per failure', async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: '80' });
  swarm.behaviour.set('web', { fail: 'task: non-zero exit (3)', startMs: 5 });
  const { registry, coordinator } = await setup(t, swarm, 300);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_APP_FAILED' });
  const calls = swarm.calls.length;
  const held = await coordinator.ensureReady(entry, new AbortController().signal).then(
    () => undefined,
    (err: unknown) => err as { code: string; message: string; detail?: string; retryAfterSeconds: number; name: string },
  );
  t.equal(held?.code, 'SA_APP_FAILED', 'the same failure');
  t.match(held?.message, /failed to start .*\(0 s ago; the next wake is tried in 1 s\)$/, 'says when the next wake is tried');
  t.match(held?.detail, /non-zero exit \(3\)/, 'the log keeps the task error');
  t.equal(held?.retryAfterSeconds, 1, 'Retry-After: the time left, rounded up');
  t.equal(swarm.calls.length, calls, 'no Docker call while backing off');
  t.equal(coordinator.failureOf('web')?.streak, 1);

  await new Promise((r) => setTimeout(r, 320));
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_APP_FAILED' });
  t.equal(swarm.calls.filter((c) => c === 'scale web 1').length, 2, 'after the backoff, a new wake');
  const second = coordinator.failureOf('web');
  t.equal(second?.streak, 2);
  t.ok(second && second.retryAt - second.at === 600, 'the second failure in a row backs off twice as long');

  // The app is fixed and redeployed: a new task template ends the backoff at once.
  const { server, port } = await origin();
  t.teardown(() => server.close());
  swarm.behaviour.set('web', { port });
  const redeployed = { ...entry, policy: { ...entry.policy, port }, templateKey: 'template-2' };
  t.equal((await coordinator.ensureReady(redeployed, new AbortController().signal)).port, port, 'woken right after the redeploy');
  t.equal(coordinator.failureOf('web'), undefined, 'a successful wake clears the failure');
});

t.test('the backoff never blocks an ops wake, an app someone else scaled up, or Docker outages', async (t) => {
  const { server, port } = await origin();
  t.teardown(() => server.close());
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.behaviour.set('web', { fail: 'task: non-zero exit (3)', startMs: 5 });
  const { registry, coordinator } = await setup(t, swarm, 60_000);
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_APP_FAILED' });
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { message: /the next wake is tried in 60 s/ });

  swarm.behaviour.set('web', { port });
  // `swarm-activator wake` (Docker directly) or another replica scaled it up: look again now.
  t.equal((await coordinator.ensureReady({ ...entry, replicas: 1 }, new AbortController().signal)).port, port, 'scaled up elsewhere: checked at once');
  coordinator.invalidate('web');
  await swarm.scaleService('web', 0);

  swarm.behaviour.set('web', { fail: 'task: non-zero exit (3)', startMs: 5 });
  await t.rejects(coordinator.ensureReady(entry, new AbortController().signal), { code: 'SA_APP_FAILED' });
  swarm.behaviour.set('web', { port });
  await coordinator.wakeNow(entry, AbortSignal.timeout(5000), 'ops API');
  t.pass('the ops wake ran despite the backoff');
  coordinator.invalidate('web');
  await swarm.scaleService('web', 0);

  // Docker unreachable: not the app's failure, so the next request tries again.
  class DownSwarm extends MemorySwarm {
    override async listTasks(): Promise<TaskInfo[]> {
      throw new SwarmUnavailableError('Docker API unreachable: connect ECONNREFUSED /var/run/docker.sock');
    }
  }
  const down = new DownSwarm();
  const c2 = new WakeCoordinator({ registry, swarm: down, readiness: new ReadinessProbe(down, 500), metrics: new Metrics({ defaultMetrics: false }), log, probeIntervalMs: 10, retryBackoffMs: 60_000 });
  await t.rejects(c2.ensureReady(entry, new AbortController().signal), { code: 'SA_DOCKER_UNAVAILABLE' });
  t.equal(c2.failureOf('web'), undefined, 'no backoff after a Docker outage');
});

t.test('the Traefik hooks: onScaledUp as a wake scales up, onWoken names what it scaled; an awake app scales nothing', async (t) => {
  const { server, port } = await origin();
  t.teardown(() => server.close());
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.behaviour.set('web', { port, startMs: 30 });
  const events: string[] = [];
  const { registry, coordinator } = await wakeStack(t, swarm, {
    wakeTimeoutMs: 2000,
    probeIntervalMs: 10,
    hooks: {
      onScaledUp: (service) => events.push(`scaling ${service} (${swarm.services.get(service)?.replicas ?? '?'} replicas)`),
      onWoken: (service, scaled, scaledUp) => events.push(`woken ${service} scaled=${scaled} [${scaledUp.join(',')}]`),
    },
  });
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  await coordinator.ensureReady(entry, new AbortController().signal);
  t.same(events, ['scaling web (1 replicas)', 'woken web scaled=true [web]'], 'told as it scaled up, then once it serves');
  events.length = 0;
  // A request for the app while it is awake, with no endpoints cached (the reaper invalidates them
  // before a scale-down): a check, no scale-up. It must not end a handoff in progress.
  coordinator.invalidate('web');
  await coordinator.ensureReady(entry, new AbortController().signal);
  t.same(events, ['woken web scaled=false []'], 'nothing scaled up, so nothing to release');
});
