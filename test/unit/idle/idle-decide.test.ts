import t from 'tap';
import { decideIdle, type IdleFacts } from '../../../src/idle/decide.js';

const base: IdleFacts = {
  now: 1_000_000,
  replicas: 1,
  idleReplicas: 0,
  open: 0,
  waking: false,
  lastActivity: 1_000_000 - 60_000,
  awakeSince: 0,
  wokenAt: undefined,
  idleTimeoutMs: 30_000,
  minAwakeMs: 10_000,
};

t.test('idle longer than the timeout: scale down', async (t) => {
  t.same(decideIdle(base), { action: 'scale-down', idleForMs: 60_000 });
});

t.test('exactly at the timeout counts as idle; a millisecond before does not', async (t) => {
  t.equal(decideIdle({ ...base, lastActivity: base.now - 30_000 }).action, 'scale-down');
  t.same(decideIdle({ ...base, lastActivity: base.now - 29_999 }), { action: 'skip', reason: 'active', idleForMs: 29_999 });
});

t.test('at or below idle replicas: nothing to do', async (t) => {
  t.equal(decideIdle({ ...base, replicas: 0 }).action, 'skip');
  t.same(decideIdle({ ...base, replicas: 2, idleReplicas: 2 }), { action: 'skip', reason: 'asleep', idleForMs: 60_000 });
  t.equal(decideIdle({ ...base, replicas: 3, idleReplicas: 1 }).action, 'scale-down');
});

t.test('never while something is open, however old the last activity', async (t) => {
  t.same(decideIdle({ ...base, open: 1, lastActivity: 0 }), { action: 'skip', reason: 'open', idleForMs: 0 });
});

t.test('never while waking', async (t) => {
  t.equal(decideIdle({ ...base, waking: true }).action, 'skip');
  t.equal((decideIdle({ ...base, waking: true }) as { reason: string }).reason, 'waking');
});

t.test('never within min-awake of a wake', async (t) => {
  t.equal((decideIdle({ ...base, wokenAt: base.now - 9_999 }) as { reason: string }).reason, 'min-awake');
  t.equal(decideIdle({ ...base, wokenAt: base.now - 10_000 }).action, 'scale-down');
});

t.test('awake with no known activity: counts from when first seen awake', async (t) => {
  t.same(decideIdle({ ...base, lastActivity: undefined, awakeSince: base.now }), { action: 'skip', reason: 'active', idleForMs: 0 });
  t.same(decideIdle({ ...base, lastActivity: undefined, awakeSince: base.now - 30_000 }), { action: 'scale-down', idleForMs: 30_000 });
});

t.test('stale activity from before an outside scale-up does not make it idle at once', async (t) => {
  t.equal(decideIdle({ ...base, lastActivity: base.now - 3_600_000, awakeSince: base.now - 5_000 }).action, 'skip');
});
