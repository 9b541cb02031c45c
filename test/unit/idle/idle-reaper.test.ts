import t from 'tap';
import type { ActivityListener, ActivitySource } from '../../../src/idle/activity-source.js';
import { IdleReaper } from '../../../src/idle/reaper.js';
import { ScaleDownGuard } from '../../../src/idle/scale-down-guard.js';
import { LABELS } from '../../../src/labels.js';
import { Metrics } from '../../../src/metrics.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { AppPolicy } from '../../../src/labels.js';
import { FakeClock, FakeCoordinator, FakeRegistry, FakeSwarm, entry, silentLog } from '../../helpers/idle-fakes.js';

class FakeSource implements ActivitySource {
  readonly name = 'fake';
  readonly openCount = new Map<string, number>();
  private listener: ActivityListener | undefined;
  start(onActivity: ActivityListener): void {
    this.listener = onActivity;
  }
  stop(): void {
    this.listener = undefined;
  }
  open(app: string): number {
    return this.openCount.get(app) ?? 0;
  }
  emit(app: string, at: number): void {
    this.listener?.(app, at);
  }
}

const TIMEOUT = 30_000;

function setup(apps: Array<{ name: string; replicas?: number; policy?: Partial<AppPolicy>; labels?: Record<string, string> }> = [{ name: 'web' }]) {
  const clock = new FakeClock();
  const swarm = new FakeSwarm();
  const coordinator = new FakeCoordinator(swarm.events);
  const registry = new FakeRegistry();
  for (const a of apps) {
    swarm.add(a.name, a.replicas ?? 1, a.labels ?? {});
  }
  const sync = () => {
    for (const a of apps) {
      const s = swarm.services.get(a.name);
      if (s) registry.set(entry(a.name, { idleTimeoutMs: TIMEOUT, ...a.policy, replicas: s.replicas, version: s.version, labels: s.labels }));
    }
  };
  sync();
  const store = new MemoryStore(clock.now);
  const source = new FakeSource();
  const metrics = new Metrics({ defaultMetrics: false });
  const guard = new ScaleDownGuard();
  const reaper = new IdleReaper({ registry, swarm, coordinator, store, sources: [source], checkIntervalMs: 1000, log: silentLog, metrics, guard, now: clock.now });
  reaper.start();
  /** One idle check, then the registry catches up with the swarm (as service events would). */
  const check = async () => {
    const r = await reaper.check();
    sync();
    return r;
  };
  return { clock, swarm, coordinator, registry, store, source, metrics, reaper, guard, check, sync };
}

const outcome = async (f: ReturnType<typeof setup>, app = 'web') => (await f.check()).find((r) => r.app === app);

t.test('an idle app is scaled to its idle replicas: version-checked, invalidated first, reason in labels', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check(); // the reaper has been watching since the app was woken
  f.source.emit('web', f.clock.t);
  f.clock.advance(TIMEOUT - 1);
  t.equal((await outcome(f))?.decision.action, 'skip', 'not yet');
  f.clock.advance(1);
  const r = await outcome(f);
  t.equal(r?.outcome, 'scaled-down');
  t.equal(f.swarm.services.get('web')?.replicas, 0);
  const call = f.swarm.scaleCalls[0];
  t.equal(call?.options.expectedVersion, 10, 'the version read under the lock');
  t.equal(call?.options.labels?.[LABELS.stateReason], 'idle for 30s');
  t.ok(call?.options.labels?.[LABELS.stateSince]);
  t.same(f.swarm.events, ['inspect:web', 'invalidate:web', 'scale:web:0'], 'inspect, drop ready endpoints, then scale');
  t.equal((await f.metrics.idleScaleDowns.get()).values[0]?.value, 1);
  t.equal((await f.store.getRecord('web')).lastScaleDown?.reason, 'idle for 30s');
  t.equal((await outcome(f))?.decision.action, 'skip', 'asleep now: nothing more');
  t.equal(f.swarm.scaleCalls.length, 1);
});

t.test('scaled up outside the activator with no known activity: a full timeout from first sight', async (t) => {
  const f = setup([{ name: 'web', replicas: 2 }]);
  t.teardown(() => f.reaper.stop());
  t.same((await outcome(f))?.decision, { action: 'skip', reason: 'active', idleForMs: 0 }, 'first sight counts as activity now');
  f.clock.advance(TIMEOUT - 1);
  t.equal((await outcome(f))?.decision.action, 'skip');
  f.clock.advance(1);
  t.equal((await outcome(f))?.outcome, 'scaled-down', 'idled too, after exactly one timeout');
});

t.test('stale activity from before an outside scale-up does not make it idle at once', async (t) => {
  const f = setup([{ name: 'web', replicas: 0 }]);
  t.teardown(() => f.reaper.stop());
  f.source.emit('web', f.clock.t);
  await f.check();
  f.clock.advance(10 * TIMEOUT);
  await f.check(); // seen asleep
  f.swarm.services.get('web')!.replicas = 1; // docker service scale web=1
  f.sync();
  t.equal((await outcome(f))?.decision.action, 'skip');
  f.clock.advance(TIMEOUT);
  t.equal((await outcome(f))?.outcome, 'scaled-down');
});

t.test('never while a request or connection is open; the timeout restarts when it closes', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  f.source.emit('web', f.clock.t);
  f.source.openCount.set('web', 1);
  for (let i = 0; i < 5; i++) {
    f.clock.advance(TIMEOUT);
    t.equal((await outcome(f))?.decision.action, 'skip');
  }
  t.equal(f.swarm.scaleCalls.length, 0);
  t.equal(await f.store.lastActivity('web'), f.clock.t, 'an open connection is written to the store as activity (other replicas)');
  f.source.openCount.delete('web');
  f.source.emit('web', f.clock.t); // the close itself is activity
  f.clock.advance(TIMEOUT - 1);
  t.equal((await outcome(f))?.decision.action, 'skip');
  f.clock.advance(1);
  t.equal((await outcome(f))?.outcome, 'scaled-down');
});

t.test('never while a wake is in progress', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  f.clock.advance(1);
  await f.check();
  f.clock.advance(2 * TIMEOUT);
  f.coordinator.waking.add('web');
  t.match((await outcome(f))?.decision, { action: 'skip', reason: 'waking' });
  f.coordinator.waking.clear();
  t.equal((await outcome(f))?.outcome, 'scaled-down');
});

t.test('never within min-awake of a wake (from onWoken, the store, or the state labels)', async (t) => {
  t.test('onWoken', async (t) => {
    const f = setup([{ name: 'web', policy: { minAwakeMs: 5 * TIMEOUT } }]);
    t.teardown(() => f.reaper.stop());
    f.reaper.noteWoken('web', true);
    f.clock.advance(4 * TIMEOUT);
    t.match((await outcome(f))?.decision, { action: 'skip', reason: 'min-awake' });
    f.clock.advance(TIMEOUT);
    t.equal((await outcome(f))?.outcome, 'scaled-down');
  });
  t.test('a wake by another replica, seen in the store', async (t) => {
    const f = setup([{ name: 'web', policy: { minAwakeMs: 5 * TIMEOUT } }]);
    t.teardown(() => f.reaper.stop());
    await f.check();
    f.clock.advance(2 * TIMEOUT);
    await f.store.setRecord('web', { wokenAt: f.clock.t - TIMEOUT });
    t.match((await outcome(f))?.decision, { action: 'skip', reason: 'min-awake' });
  });
  t.test('a wake recorded in the state labels (survives an activator restart)', async (t) => {
    const clockStart = new FakeClock().t;
    const f = setup([{ name: 'web', policy: { minAwakeMs: 5 * TIMEOUT }, labels: { [LABELS.stateReason]: 'woken: request for web', [LABELS.stateSince]: new Date(clockStart).toISOString() } }]);
    t.teardown(() => f.reaper.stop());
    await f.check();
    f.clock.advance(2 * TIMEOUT);
    t.match((await outcome(f))?.decision, { action: 'skip', reason: 'min-awake' });
  });
});

t.test("another replica's activity in the store keeps it up", async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT + 5000);
  await f.store.touch('web', f.clock.t - 1000);
  t.match((await outcome(f))?.decision, { action: 'skip', reason: 'active' });
});

t.test('the lock: a replica that cannot take it does not scale', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  const other = await f.store.tryLock('scale-down:web', 60_000);
  t.ok(other);
  t.equal((await outcome(f))?.outcome, 'locked');
  t.equal(f.swarm.scaleCalls.length, 0);
  await f.store.unlock('scale-down:web', other as string);
  t.equal((await outcome(f))?.outcome, 'scaled-down');
  t.type(await f.store.tryLock('scale-down:web', 1000), 'string', 'released after the scale-down');
});

t.test('activity that arrives while the scale-down is being prepared calls it off', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  f.swarm.onInspect = () => f.source.emit('web', f.clock.t); // a request lands between decision and update
  t.equal((await outcome(f))?.outcome, 'busy');
  t.equal(f.swarm.scaleCalls.length, 0);
  t.equal(f.swarm.services.get('web')?.replicas, 1);
});

t.test('a request that opens during the update itself stops it (onlyIf at write time)', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  f.swarm.beforeWrite = () => f.source.openCount.set('web', 1);
  t.equal((await outcome(f))?.outcome, 'conflict');
  t.equal(f.swarm.scaleCalls[0]?.onlyIf, false);
  t.equal(f.swarm.services.get('web')?.replicas, 1);
});

t.test('a wake that starts during the update stops it too', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  f.swarm.beforeWrite = () => f.coordinator.waking.add('web');
  t.equal((await outcome(f))?.outcome, 'conflict');
  t.equal(f.swarm.services.get('web')?.replicas, 1);
});

t.test('a version conflict is not retried in the same round', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  f.swarm.beforeWrite = () => {
    f.swarm.services.get('web')!.version += 1; // someone else updated the service meanwhile
    f.swarm.beforeWrite = undefined;
  };
  t.equal((await outcome(f))?.outcome, 'conflict');
  t.equal(f.swarm.scaleCalls.length, 1, 'one attempt');
  t.equal((await outcome(f))?.outcome, 'scaled-down', 'the next round decides again');
});

t.test('the idle-timeout label as it is at scale-down time wins over a stale registry', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  f.swarm.services.get('web')!.labels[LABELS.idleTimeout] = '10m'; // ops just raised it; no event yet
  t.equal((await outcome(f))?.outcome, 'busy');
  t.equal(f.swarm.scaleCalls.length, 0);
});

t.test('a shorter timeout from the registry applies on the next check', async (t) => {
  const f = setup([{ name: 'web', policy: { idleTimeoutMs: 3_600_000 } }]);
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  t.equal((await outcome(f))?.decision.action, 'skip');
  f.registry.set(entry('web', { idleTimeoutMs: TIMEOUT, replicas: 1, version: 11 })); // the update event
  f.swarm.services.get('web')!.version = 11;
  const r = (await f.reaper.check()).find((x) => x.app === 'web');
  t.equal(r?.outcome, 'scaled-down');
});

t.test('without the store there is no scale-down', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  f.store.lastActivity = async () => {
    throw new Error('redis down');
  };
  t.match((await outcome(f))?.decision, { action: 'skip', reason: 'store-unavailable' });
  t.equal(f.swarm.scaleCalls.length, 0);
});

t.test('idle replicas above 0: scaled to them, and left alone there', async (t) => {
  const f = setup([{ name: 'web', replicas: 3, policy: { idleReplicas: 1 } }]);
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT);
  t.equal((await outcome(f))?.outcome, 'scaled-down');
  t.equal(f.swarm.services.get('web')?.replicas, 1);
  f.clock.advance(10 * TIMEOUT);
  t.match((await outcome(f))?.decision, { action: 'skip', reason: 'asleep' });
});

t.test('a group member without traffic stays up while another member is busy', async (t) => {
  const f = setup([
    { name: 'web', policy: { group: 'shop' } },
    { name: 'worker', policy: { group: 'shop', http: false } },
  ]);
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.clock.advance(TIMEOUT - 1000);
  f.source.emit('web', f.clock.t);
  f.clock.advance(1000);
  const results = await f.check();
  t.same(results.map((r) => [r.app, r.decision.action]), [['web', 'skip'], ['worker', 'skip']]);
  f.clock.advance(TIMEOUT);
  const later = await f.check();
  t.same(later.map((r) => r.outcome), ['scaled-down', 'scaled-down']);
});

t.test('seconds since the last activity is exported per app', async (t) => {
  const f = setup();
  t.teardown(() => f.reaper.stop());
  await f.check();
  f.source.emit('web', f.clock.t);
  f.clock.advance(12_345);
  await f.check();
  t.equal((await f.metrics.secondsSinceActivity.get()).values.find((v) => v.labels.app === 'web')?.value, 12.3);
});

t.test('ops sleep (force) skips the timeout and min-awake but not open connections', async (t) => {
  const f = setup([{ name: 'web', policy: { minAwakeMs: 10 * TIMEOUT } }]);
  t.teardown(() => f.reaper.stop());
  f.reaper.noteWoken('web', true);
  f.source.openCount.set('web', 1);
  t.equal(await f.reaper.scaleDown(f.registry.byService('web')!, { reason: 'ops', force: true }), 'busy');
  f.source.openCount.clear();
  t.equal(await f.reaper.scaleDown(f.registry.byService('web')!, { reason: 'ops', force: true }), 'scaled-down');
});

t.test('the guard orders a wake after a scale-down in flight', async (t) => {
  const guard = new ScaleDownGuard();
  const swarm = new FakeSwarm();
  swarm.add('web', 1);
  const wakeSwarm = guard.wrap(swarm);
  let finishDown!: () => void;
  const down = guard.run('web', async () => {
    await new Promise<void>((r) => (finishDown = r));
    return swarm.scaleService('web', 0);
  });
  const up = wakeSwarm.scaleService('web', 1, { onlyIf: (s) => (s.replicas ?? 0) < 1 });
  await new Promise((r) => setImmediate(r));
  t.same(swarm.events, [], 'the wake waits');
  finishDown();
  await down;
  const res = await up;
  t.same(swarm.events, ['scale:web:0', 'scale:web:1'], 'down, then up');
  t.equal(res.changed, true, 'the wake saw 0 and scaled back up');
  t.equal(swarm.services.get('web')?.replicas, 1);
  t.equal(await wakeSwarm.inspectService('web').then((s) => s?.replicas), 1, 'other methods pass through');
});
