/**
 * What a held request keeps while its app wakes (src/http/chain.ts hold()): 10,000 of them may wait
 * for one wake (bench burst10k), so each keeps one promise, one timer and one close listener, and
 * joins the shared wake without an AbortController or a wake reason of its own; the first one's
 * reason names the wake. All of them are answered, and each frees its slot.
 */
import { get } from 'node:http';
import t from 'tap';
import { LABELS } from '../../../src/labels.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';
import { proxyStack } from '../../helpers/wake-stack.js';

t.test('100 held requests: one wake, no AbortController each, one reason, every one answered and its slot freed', async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: '1' });
  swarm.behaviour.set('web', { startMs: 60_000 }); // never ready within the test: the wake times out
  const stack = await proxyStack(t, swarm, { wakeTimeoutMs: 800, config: { maxHeldPerApp: 1000 } });
  const reasons: string[] = [];
  const joinWake = stack.coordinator.joinWake.bind(stack.coordinator);
  stack.coordinator.joinWake = (entry, reason, force) => joinWake(entry, () => (reasons.push(reason()), reasons.at(-1) as string), force);

  const Real = globalThis.AbortController;
  let made = 0;
  globalThis.AbortController = class extends Real {
    constructor() {
      super();
      made++;
    }
  };
  t.teardown(() => {
    globalThis.AbortController = Real;
  });
  await stack.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (stack.app.server.address() as { port: number }).port;
  // node:http, not fetch: fetch makes an AbortController per request itself.
  const answers = Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      new Promise<number>((resolve, reject) => {
        get({ host: '127.0.0.1', port, path: `/held/${i}`, headers: { host: 'web.test' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      }),
    ),
  );
  const heldNow = async () => (await stack.metrics.held.get()).values.reduce((n, v) => n + v.value, 0);
  while ((await heldNow()) < 100) await new Promise((r) => setTimeout(r, 10));
  const madeWhileHeld = made;
  globalThis.AbortController = Real;

  t.equal(madeWhileHeld, 0, 'no AbortController per held request (there was one each)');
  t.same(reasons, ['request for web.test'], 'the wake reason is built once, by the request that started it');
  const statuses = await answers;
  t.same([...new Set(statuses)], [504], 'every held request is answered (the wake timed out)');
  t.equal(await heldNow(), 0, 'every slot is free again');
  t.equal(swarm.calls.filter((c) => c.startsWith('scale web 1')).length, 1, 'one scale-up');
});
