// One contract, two stores: the embedded MemoryStore and the RedisStore on a real redis-server
// (REDIS_URL, as written by scripts/redis-up.sh: redis://127.0.0.1:16379). Each Redis run uses a
// fresh key prefix and deletes its keys afterwards.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import t from 'tap';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';

interface Fixture {
  /** Two handles on the same shared state (two activator replicas); the same object for memory. */
  pair(): { a: Store; b: Store };
  /** Redis only: a raw client on the same server, and the key prefix of this run. */
  raw?: { redis: Redis; prefix: string };
}

const redisUrl = process.env.REDIS_URL;

type Teardown = { teardown(fn: () => unknown): void };

const fixtures: Array<[string, (t: Teardown) => Fixture | undefined]> = [
  ['MemoryStore', () => ({ pair: () => { const s = new MemoryStore(); return { a: s, b: s }; } })],
  [
    'RedisStore',
    (tt) => {
      if (!redisUrl) return undefined;
      const prefix = `sa-test:${randomUUID()}:`;
      const made: Store[] = [];
      const raw = new Redis(redisUrl);
      tt.teardown(async () => {
        for (const s of made) await s.close();
        const keys = await raw.keys(`${prefix}*`);
        if (keys.length > 0) await raw.del(...keys);
        await raw.quit();
      });
      return {
        raw: { redis: raw, prefix },
        pair: () => {
          const a = new RedisStore({ url: redisUrl, prefix });
          const b = new RedisStore({ url: redisUrl, prefix });
          made.push(a, b);
          return { a, b };
        },
      };
    },
  ],
];

for (const [name, make] of fixtures) {
  const skip = name === 'RedisStore' && !redisUrl ? 'REDIS_URL is not set: run scripts/redis-up.sh and source /var/tmp/swarm-activator/env' : false;
  t.test(name, { skip }, async (t) => {
    const fx = make(t);
    if (!fx) return;

    t.test('unknown app has no activity and an empty record', async (t) => {
      const { a } = fx.pair();
      t.equal(await a.lastActivity('nobody'), undefined);
      t.same(await a.getRecord('nobody'), {});
    });

    t.test('touch keeps the maximum, per app', async (t) => {
      const { a } = fx.pair();
      await a.touch('app1', 1_700_000_000_100);
      await a.touch('app1', 1_700_000_000_050);
      t.equal(await a.lastActivity('app1'), 1_700_000_000_100, 'an older touch does not go back');
      await a.touch('app1', 1_700_000_000_200);
      t.equal(await a.lastActivity('app1'), 1_700_000_000_200);
      t.equal(await a.lastActivity('app2'), undefined, 'other apps are untouched');
    });

    t.test('concurrent touches from two replicas end at the maximum', async (t) => {
      const { a, b } = fx.pair();
      const times = Array.from({ length: 60 }, (_, i) => 1_700_000_000_000 + ((i * 7919) % 1000));
      await Promise.all(times.map((at, i) => (i % 2 ? a : b).touch('busy', at)));
      t.equal(await a.lastActivity('busy'), Math.max(...times));
      t.equal(await b.lastActivity('busy'), Math.max(...times), 'both replicas read the same value');
    });

    t.test('a lock has one holder; unlock needs its token', async (t) => {
      const { a, b } = fx.pair();
      const token = await a.tryLock('scale-down:x', 10_000);
      t.type(token, 'string');
      t.equal(await b.tryLock('scale-down:x', 10_000), null, 'a second replica cannot take it');
      t.equal(await b.unlock('scale-down:x', 'not-the-token'), false, 'a wrong token does not unlock');
      t.equal(await b.tryLock('scale-down:x', 10_000), null, 'still held after the wrong unlock');
      t.equal(await a.unlock('scale-down:x', token as string), true);
      t.equal(await a.unlock('scale-down:x', token as string), false, 'unlocking twice is a no-op');
      const again = await b.tryLock('scale-down:x', 10_000);
      t.type(again, 'string', 'free again after unlock');
      t.not(again, token, 'every lock gets a new token');
      t.ok(await b.unlock('scale-down:x', again as string));
    });

    t.test('of many concurrent tryLock calls exactly one wins', async (t) => {
      const { a, b } = fx.pair();
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).tryLock('race', 10_000)));
      t.equal(tokens.filter((x) => x !== null).length, 1);
    });

    t.test('a lock expires after its TTL, and a stale token cannot release the new holder', async (t) => {
      const { a, b } = fx.pair();
      const first = await a.tryLock('ttl', 100);
      t.type(first, 'string');
      await sleep(250);
      const second = await b.tryLock('ttl', 10_000);
      t.type(second, 'string', 'taken again once expired');
      t.equal(await a.unlock('ttl', first as string), false, 'the expired holder cannot unlock');
      t.equal(await a.tryLock('ttl', 10_000), null, 'the new holder still has it');
      t.ok(await b.unlock('ttl', second as string));
    });

    t.test('admin sessions: shared by both replicas, gone when deleted or expired', async (t) => {
      const { a, b } = fx.pair();
      const expiresAt = Date.now() + 60_000;
      await a.putSession('key-1', { role: 'operate', expiresAt });
      t.same(await b.getSession('key-1'), { role: 'operate', expiresAt }, 'a login on one replica works on the other');
      t.equal(await b.getSession('key-2'), undefined);
      await b.deleteSession('key-1');
      t.equal(await a.getSession('key-1'), undefined, 'a logout on the other replica ends it everywhere');
      await a.putSession('short', { role: 'read', expiresAt: Date.now() + 150 });
      t.ok(await a.getSession('short'));
      await sleep(300);
      t.equal(await b.getSession('short'), undefined, 'expired');
    });

    t.test('records merge their fields', async (t) => {
      const { a, b } = fx.pair();
      await a.setRecord('rec', { wokenAt: 1000 });
      await b.setRecord('rec', { lastScaleDown: { at: 2000, reason: 'idle for 30s' } });
      t.same(await a.getRecord('rec'), { wokenAt: 1000, lastScaleDown: { at: 2000, reason: 'idle for 30s' } });
      await a.setRecord('rec', { wokenAt: 3000 });
      t.same(await b.getRecord('rec'), { wokenAt: 3000, lastScaleDown: { at: 2000, reason: 'idle for 30s' } });
      await a.setRecord('rec', {});
      t.same(await b.getRecord('rec'), { wokenAt: 3000, lastScaleDown: { at: 2000, reason: 'idle for 30s' } }, 'an empty patch changes nothing');
    });

    t.test('timestamp maps: set, overwrite, clear with undefined; the two maps are separate; shared by both replicas', async (t) => {
      const { a, b } = fx.pair();
      t.same([...(await a.timestamps('traefik-handoff'))], [], 'empty at first');
      await a.setTimestamp('traefik-handoff', 'shop', 1_700_000_000_100);
      await a.setTimestamp('traefik-handoff', 'blog', 1_700_000_000_200);
      await b.setTimestamp('traefik-fetch', '10.0.1.5', 1_700_000_000_300);
      const sorted = (m: Map<string, number>) => [...m].sort(([x], [y]) => x.localeCompare(y));
      t.same(sorted(await b.timestamps('traefik-handoff')), [['blog', 1_700_000_000_200], ['shop', 1_700_000_000_100]], "the other replica reads what the first wrote");
      t.same(sorted(await a.timestamps('traefik-fetch')), [['10.0.1.5', 1_700_000_000_300]], 'and the first what the other wrote');
      t.notOk((await a.timestamps('traefik-fetch')).has('shop'), 'a field of one map is not in the other');

      // Overwrite: the last write wins (an older time too: a Traefik fetch's start, not a maximum).
      await b.setTimestamp('traefik-handoff', 'shop', 1_700_000_000_900);
      t.equal((await a.timestamps('traefik-handoff')).get('shop'), 1_700_000_000_900, 'overwritten');
      await a.setTimestamp('traefik-fetch', '10.0.1.5', 1_700_000_000_050);
      t.equal((await b.timestamps('traefik-fetch')).get('10.0.1.5'), 1_700_000_000_050, 'an older value overwrites too');

      // A field that is an IPv6 address, and a fractional time (stored as whole ms).
      await a.setTimestamp('traefik-fetch', 'fd00::7', 1_700_000_000_400.4);
      t.equal((await b.timestamps('traefik-fetch')).get('fd00::7'), 1_700_000_000_400, 'whole milliseconds, any field name');

      // Clear with undefined: only that field, only in that map.
      await b.setTimestamp('traefik-handoff', 'shop', undefined);
      t.same(sorted(await a.timestamps('traefik-handoff')), [['blog', 1_700_000_000_200]], 'cleared for both replicas');
      t.same(sorted(await a.timestamps('traefik-fetch')), [['10.0.1.5', 1_700_000_000_050], ['fd00::7', 1_700_000_000_400]], 'the other map untouched');
      await a.setTimestamp('traefik-handoff', 'nobody', undefined);
      t.same(sorted(await b.timestamps('traefik-handoff')), [['blog', 1_700_000_000_200]], 'clearing a missing field is a no-op');
      await a.setTimestamp('traefik-handoff', 'blog', undefined);
      t.same([...(await b.timestamps('traefik-handoff'))], [], 'empty again');

      // What a caller does with the returned map is its own: the store is unchanged.
      const copy = await a.timestamps('traefik-fetch');
      copy.set('injected', 1);
      copy.delete('10.0.1.5');
      t.same(sorted(await b.timestamps('traefik-fetch')), [['10.0.1.5', 1_700_000_000_050], ['fd00::7', 1_700_000_000_400]], 'the returned map is a copy');
    });

    t.test('Redis: the timestamps outlive the client that wrote them, under the prefix, with a retention TTL', { skip: fx.raw ? false : 'Redis only' }, async (t) => {
      const { redis, prefix } = fx.raw!;
      const { a } = fx.pair();
      await a.setTimestamp('traefik-handoff', 'shop', 1_700_000_001_000);
      await a.setTimestamp('traefik-fetch', '10.0.1.5', 1_700_000_001_100);
      await a.close();
      // A replica that starts later (or restarts) sees the same handoffs and fetches.
      const { b } = fx.pair();
      t.equal((await b.timestamps('traefik-handoff')).get('shop'), 1_700_000_001_000, 'read by a client that connected after the writer left');
      t.equal((await b.timestamps('traefik-fetch')).get('10.0.1.5'), 1_700_000_001_100);
      const key = `${prefix}timestamps:traefik-handoff`;
      t.same(await redis.hgetall(key), { shop: '1700000001000' }, `one hash per map (${key}), epoch ms as text`);
      const ttl = await redis.pttl(key);
      t.ok(ttl > 29 * 24 * 3600 * 1000, `expires with the store's retention (PTTL ${ttl} ms), so a forgotten field does not live for ever`);
      // A foreign value in the hash (another tool, a corrupt write) is skipped, not a failed read.
      await redis.hset(key, 'garbage', 'not-a-number');
      t.same([...(await b.timestamps('traefik-handoff'))], [['shop', 1_700_000_001_000]], 'a non-numeric field is ignored (and the earlier test left this map empty)');
      await b.setTimestamp('traefik-handoff', 'shop', undefined);
      await b.setTimestamp('traefik-handoff', 'garbage', undefined);
      t.equal(await redis.exists(key), 0, 'the hash is gone with its last field');
    });
  });
}
