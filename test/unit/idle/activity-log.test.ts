import t from 'tap';
import { ActivityLog } from '../../../src/idle/activity-log.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { silentLog } from '../../helpers/idle-fakes.js';

class SlowStore extends MemoryStore {
  touches: Array<[string, number]> = [];
  fail = false;
  release: Array<() => void> = [];
  override async touch(app: string, at: number): Promise<void> {
    this.touches.push([app, at]);
    await new Promise<void>((r) => this.release.push(r));
    if (this.fail) throw new Error('store down');
    return super.touch(app, at);
  }
  releaseAll(): void {
    const r = this.release;
    this.release = [];
    for (const f of r) f();
  }
}

t.test('writes are coalesced per app: one in flight, then the newest', async (t) => {
  const store = new SlowStore();
  const log = new ActivityLog(store, silentLog);
  for (let at = 1; at <= 100; at++) log.record('a', at);
  t.same(store.touches, [['a', 1]], 'one write in flight');
  t.equal(log.localLatest('a'), 100, 'local view is always fresh');
  store.releaseAll();
  await new Promise((r) => setImmediate(r));
  t.same(store.touches, [['a', 1], ['a', 100]], 'then only the newest');
  store.releaseAll();
  await log.flush();
  t.equal(await store.lastActivity('a'), 100);
  t.equal(await log.latest('a'), 100);
});

t.test('older records never move it back', async (t) => {
  const store = new MemoryStore();
  const log = new ActivityLog(store, silentLog);
  log.record('a', 50);
  log.record('a', 10);
  await log.flush();
  t.equal(log.localLatest('a'), 50);
  t.equal(await store.lastActivity('a'), 50);
});

t.test("latest() includes other replicas' activity from the store", async (t) => {
  const store = new MemoryStore();
  const log = new ActivityLog(store, silentLog);
  log.record('a', 100);
  await store.touch('a', 500);
  t.equal(await log.latest('a'), 500);
  await store.touch('b', 7);
  t.equal(await log.latest('b'), 7);
  t.equal(log.localLatest('b'), undefined);
});

t.test('a failing store keeps the local value and is retried with the next record', async (t) => {
  const store = new SlowStore();
  store.fail = true;
  const log = new ActivityLog(store, silentLog);
  log.record('a', 1);
  store.releaseAll();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.equal(log.localLatest('a'), 1);
  store.fail = false;
  log.record('a', 2);
  store.releaseAll();
  await log.flush();
  t.equal(await store.lastActivity('a'), 2);
});
