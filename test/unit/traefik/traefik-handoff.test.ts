/**
 * The two-phase handoff's bookkeeping (src/traefik/handoff.ts) against the memory store, with a
 * fake clock: it waits for every recently seen Traefik instance, is bounded, and drops back. The
 * real Traefik runs it in test/e2e/traefik-asleep.test.ts (c).
 */
import t from 'tap';
import pino from 'pino';
import { Metrics } from '../../../src/metrics.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { Handoffs } from '../../../src/traefik/handoff.js';
import type { TimestampMap } from '../../../src/store/store.js';

function rig(opts: { timeoutMs?: number; awake?: Set<string> } = {}) {
  let now = 1_000_000;
  const store = new MemoryStore(() => now);
  let changes = 0;
  const waits: Array<() => void> = [];
  const handoffs = new Handoffs({
    store,
    metrics: new Metrics({ defaultMetrics: false }),
    log: pino({ level: 'silent' }),
    timeoutMs: opts.timeoutMs ?? 5000,
    applyGraceMs: 2500,
    instanceStaleMs: 30_000,
    releaseAfterMs: 8000,
    awake: (app) => opts.awake?.has(app) ?? false,
    onChange: () => changes++,
    now: () => now,
    // Each sleep moves the clock; the test's `tick` hook runs what Traefik would do meanwhile.
    sleep: async (ms) => {
      now += ms;
      for (const w of waits.splice(0)) w();
    },
  });
  return { store, handoffs, advance: (ms: number) => (now += ms), at: () => now, changes: () => changes, onSleep: (f: () => void) => waits.push(f) };
}

t.test('waits until every Traefik instance seen lately has fetched, then for Traefik to apply it', async (t) => {
  const r = rig();
  await r.handoffs.noteFetch('10.0.0.5', r.at() - 1000);
  await r.handoffs.noteFetch('10.0.0.6', r.at() - 2000);
  await r.handoffs.noteFetch('10.0.0.9', r.at() - 60_000); // gone: not waited for
  const started = r.at();
  r.onSleep(() => void r.handoffs.noteFetch('10.0.0.5', r.at()));
  let fetched6 = false;
  const poll = () =>
    r.onSleep(() => {
      if (r.at() - started >= 1500 && !fetched6) {
        fetched6 = true;
        void r.handoffs.noteFetch('10.0.0.6', r.at());
      } else poll();
    });
  poll();
  const result = await r.handoffs.begin(['shop']);
  t.ok(result.ok, 'ready');
  t.ok(r.handoffs.raised().has('shop'), 'the priority stays raised for the scale-down');
  t.ok(r.at() - started >= 1500 + 2500, `waited for the slower instance and the apply grace (${r.at() - started} ms)`);
  t.same([...(await r.store.timestamps('traefik-handoff')).keys()], ['shop'], 'shared through the store');
  await r.handoffs.end(['shop']);
  t.notOk(r.handoffs.raised().has('shop'), 'dropped back after the wake');
  t.same([...(await r.store.timestamps('traefik-handoff')).keys()], []);
});

t.test('no Traefik instance seen: no scale-down, and the priority drops back', async (t) => {
  const r = rig();
  const result = await r.handoffs.begin(['shop']);
  t.match(result, { ok: false, reason: /no Traefik instance fetched/ });
  t.notOk(r.handoffs.raised().has('shop'));
});

t.test('an instance that never fetches: bounded, then called off', async (t) => {
  const r = rig({ timeoutMs: 3000 });
  await r.handoffs.noteFetch('10.0.0.5', r.at() - 1000);
  const started = r.at();
  const result = await r.handoffs.begin(['shop', 'shop-worker']);
  t.match(result, { ok: false, reason: /10\.0\.0\.5 did not fetch the raised priority within 3000 ms/ });
  t.ok(r.at() - started <= 3200, 'within the bound');
  t.same([...(await r.store.timestamps('traefik-handoff')).keys()], [], 'every member dropped back');
});

t.test('another replica reads the handoffs from the store before each body', async (t) => {
  const r = rig();
  const other = new Handoffs({ store: r.store, metrics: new Metrics({ defaultMetrics: false }), log: pino({ level: 'silent' }), timeoutMs: 1000, applyGraceMs: 0, instanceStaleMs: 30_000, releaseAfterMs: 8000, onChange: () => undefined });
  await r.store.setTimestamp('traefik-handoff', 'shop', r.at());
  t.ok((await other.refresh()).has('shop'));
  await r.handoffs.cancel(['shop']);
  t.notOk((await other.refresh()).has('shop'), 'a cancelled handoff is gone for every replica');
});

t.test('after a wake the priority stays raised until Traefik can have the new task (releaseAfterMs), for every replica', async (t) => {
  const r = rig();
  await r.handoffs.noteFetch('10.0.0.5', r.at() - 500);
  r.onSleep(() => void r.handoffs.noteFetch('10.0.0.5', r.at()));
  t.ok((await r.handoffs.begin(['shop'])).ok);
  // ... scaled down; a request wakes it; the wake is done:
  await r.handoffs.releaseLater(['shop']);
  t.ok((await r.handoffs.refresh()).has('shop'), 'still raised right after the wake: Traefik\'s router has the old task');
  r.advance(7900);
  t.ok((await r.handoffs.refresh()).has('shop'), 'still raised just before the release time');
  const changesBefore = r.changes();
  r.advance(200);
  t.notOk((await r.handoffs.refresh()).has('shop'), 'dropped back at the release time');
  t.ok(r.changes() > changesBefore, 'the body is rebuilt');
  t.same([...(await r.store.timestamps('traefik-handoff')).keys()], [], 'gone from the store');
  t.same([...(await r.store.timestamps('traefik-release')).keys()], [], 'and its release time too');
});

t.test('a new handoff clears the release pending from the last wake', async (t) => {
  const r = rig();
  await r.handoffs.hold(['shop']);
  await r.handoffs.releaseLater(['shop']);
  r.advance(1000);
  await r.handoffs.noteFetch('10.0.0.5', r.at() - 10);
  r.onSleep(() => void r.handoffs.noteFetch('10.0.0.5', r.at()));
  t.ok((await r.handoffs.begin(['shop'])).ok, 'a scale-down soon after the wake');
  r.advance(60_000);
  t.ok((await r.handoffs.refresh()).has('shop'), 'raised while asleep, however long, until the next wake');
});

t.test('hold raises at once (a wake scaling up), with no fetch awaited; releaseLater ignores apps not raised', async (t) => {
  const r = rig();
  const started = r.at();
  await r.handoffs.hold(['shop']);
  t.equal(r.at(), started, 'no wait');
  t.ok(r.handoffs.raised().has('shop'));
  t.ok((await r.store.timestamps('traefik-handoff')).has('shop'), 'in the store for the other replicas');
  await r.handoffs.releaseLater(['other']);
  t.same([...(await r.store.timestamps('traefik-release')).keys()], [], 'nothing to release for an app not raised');
});

t.test('woken outside the activator: a handoff raised long ago while the app has tasks is released', async (t) => {
  const awake = new Set<string>();
  const r = rig({ awake });
  await r.handoffs.hold(['shop', 'blog']);
  r.advance(60_000);
  t.same([...(await r.handoffs.refresh())].sort(), ['blog', 'shop'], 'both asleep (no tasks): raised');
  awake.add('shop'); // docker service scale shop=1
  t.ok((await r.handoffs.refresh()).has('shop'), 'the release is scheduled, not immediate');
  r.advance(8001);
  t.same([...(await r.handoffs.refresh())], ['blog'], 'shop dropped back one release delay later; blog still asleep');
});

t.test('a fetch that began while the handoff was being written does not count: it may have read the store just before', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore(() => now);
  let laterFetchAt = 0;
  // The store write takes 40 ms; meanwhile another replica serves a fetch that read the store
  // before the write landed (so it carried the old priority), and records that it began then.
  const slowStore = {
    setTimestamp: async (map: TimestampMap, field: string, at: number | undefined) => {
      if (map === 'traefik-handoff' && at !== undefined) {
        now += 20;
        await store.setTimestamp('traefik-fetch', '10.0.0.5', now);
        now += 20;
      }
      await store.setTimestamp(map, field, at);
    },
    timestamps: (map: TimestampMap) => store.timestamps(map),
  };
  await store.setTimestamp('traefik-fetch', '10.0.0.5', now - 1000);
  const handoffs = new Handoffs({
    store: slowStore,
    metrics: new Metrics({ defaultMetrics: false }),
    log: pino({ level: 'silent' }),
    timeoutMs: 5000,
    applyGraceMs: 0,
    instanceStaleMs: 30_000,
    releaseAfterMs: 8000,
    onChange: () => undefined,
    now: () => now,
    sleep: async (ms) => {
      now += ms;
      // Traefik's next poll, 500 ms on: that one read the raised priority.
      if (!laterFetchAt && now >= 1_000_500) {
        laterFetchAt = now;
        await store.setTimestamp('traefik-fetch', '10.0.0.5', now);
      }
    },
  });
  const started = now;
  const result = await handoffs.begin(['shop']);
  t.ok(result.ok, 'ready');
  t.ok(laterFetchAt > 0, 'the next poll came');
  t.ok(now >= laterFetchAt, `waited for the fetch after the write (${now - started} ms), not the one during it (at +20 ms)`);
});
