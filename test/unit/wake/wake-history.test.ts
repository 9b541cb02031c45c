/**
 * WakeHistory (bounded per app, usual wake time) and what the WakeCoordinator records in it, with
 * an in-memory SwarmClient and a real HTTP "task" on 127.0.0.1 (the real swarm: e2e tests).
 */
import { createServer } from 'node:http';
import t from 'tap';
import { LABELS } from '../../../src/labels.js';
import { WAKES_KEPT, WakeHistory } from '../../../src/wake/wake-history.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';
import { discovered, wakeStack } from '../../helpers/wake-stack.js';

t.test('keeps the last wakes per app, newest first, and the usual time is the median of cold successes', async (t) => {
  const h = new WakeHistory();
  const changed: string[] = [];
  h.on('changed', (s) => changed.push(s));
  for (const ms of [900, 1100, 5000]) {
    h.started('web', 'request for web.test');
    t.ok(h.inProgress('web'), 'in progress while it runs');
    h.finished('web', { ms, outcome: 'ready', cold: true });
  }
  t.equal(h.inProgress('web'), undefined);
  t.same(h.recent('web').map((w) => w.ms), [5000, 1100, 900], 'newest first');
  t.equal(h.recent('web')[0]?.reason, 'request for web.test');
  t.equal(h.usualMs('web'), 1100, 'median, so one slow wake does not move it');
  h.started('web', 'x');
  h.finished('web', { ms: 60000, outcome: 'failed', code: 'SA_WAKE_TIMEOUT', cold: true });
  t.equal(h.usualMs('web'), 1100, 'failed wakes are not a usual time');
  t.equal(h.recent('web')[0]?.code, 'SA_WAKE_TIMEOUT');
  h.started('web', 'x');
  h.finished('web', { ms: 3, outcome: 'ready', cold: false });
  t.equal(h.recent('web').length, 4, 'an app that was not asleep is no wake: not kept');
  for (let i = 0; i < 30; i++) {
    h.started('web', 'x');
    h.finished('web', { ms: 100 + i, outcome: 'ready', cold: true });
  }
  t.equal(h.recent('web').length, WAKES_KEPT, 'bounded');
  t.equal(h.usualMs('other'), undefined, 'no wakes, no usual time');
  t.equal(changed.length, 2 * 35, 'every start and end is an event');
  h.forget('web');
  t.same(h.recent('web'), []);
});

async function setup(t: { teardown(fn: () => unknown): void }, replicas: number) {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) }, replicas);
  swarm.behaviour.set('web', { port, startMs: 80 });
  if (replicas > 0) {
    swarm.tasks.set('id-web', [{ id: 'task-old', serviceId: 'id-web', nodeId: 'n1', state: 'running', desiredState: 'running', error: undefined, message: '', exitCode: undefined, containerId: 'c0', createdAt: '', addresses: [{ networkId: 'net', networkName: 'net', ip: '127.0.0.1' }] }]);
  }
  const history = new WakeHistory();
  const stack = await wakeStack(t, swarm, { wakeTimeoutMs: 2000, probeIntervalMs: 10, history });
  t.teardown(() => server.close());
  return { coordinator: stack.coordinator, history, entry: discovered(stack, 'web') };
}

t.test('a sleeping app: every request held for its wake waited for a wake, the wake is recorded', async (t) => {
  const { coordinator, history, entry } = await setup(t, 0);
  const [a, b] = await Promise.all([coordinator.ensureReadyDetail(entry, new AbortController().signal, 'request for web.test'), coordinator.ensureReadyDetail(entry, new AbortController().signal)]);
  t.equal(a.waitedForWake, true, 'the request that started the wake');
  t.equal(b.waitedForWake, true, 'a request that joined it while it ran also waited');
  const after = await coordinator.ensureReadyDetail(entry, new AbortController().signal);
  t.equal(after.waitedForWake, false, 'a request after the app was ready did not');
  const [wake] = history.recent('web');
  t.equal(wake?.outcome, 'ready');
  t.equal(wake?.cold, true);
  t.equal(wake?.reason, 'request for web.test');
  t.ok((wake?.ms ?? 0) >= 70, `took the task's start time (${wake?.ms} ms)`);
  t.equal(history.usualMs('web'), wake?.ms);
});

t.test('an app already awake whose endpoints this activator did not know yet (a restart): no cold start, no wake recorded', async (t) => {
  const { coordinator, history, entry } = await setup(t, 1);
  const r = await coordinator.ensureReadyDetail(entry, new AbortController().signal);
  t.equal(r.waitedForWake, false);
  t.same(history.recent('web'), []);
  t.equal(history.inProgress('web'), undefined);
});
