// "Keep awake until" (the dashboard's action): PUT /api/apps/:service/keep-awake on the real admin
// app (auth included), the label it writes, and the reaper honouring it (fake clock and swarm).
import { AppSettings } from '../../../src/apps/app-settings.js';
import t from 'tap';
import { IdleReaper } from '../../../src/idle/reaper.js';
import { LABELS, parsePolicy } from '../../../src/labels.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { ServiceInfo } from '../../../src/swarm/swarm.js';
import { fakeAdminApp } from '../../helpers/admin-app.js';
import { newToken } from '../../helpers/admin-tokens.js';
import { FakeClock, FakeCoordinator, FakeRegistry, FakeSwarm, entry, silentLog } from '../../helpers/idle-fakes.js';

const OPERATE = newToken();
const READ = newToken();

async function setup(t: { teardown(fn: () => unknown): void }, replicas = 0) {
  const registry = new FakeRegistry([entry('web', { replicas })]);
  const swarm = Object.assign(new FakeSwarm(), {
    async updateServiceLabels(name: string, add: Record<string, string>, remove: string[] = []): Promise<ServiceInfo> {
      const s = swarm.services.get(name)!;
      s.labels = { ...s.labels, ...add };
      for (const k of remove) delete s.labels[k];
      s.version += 1;
      return { ...s };
    },
  });
  swarm.add('web', replicas);
  const woken: string[] = [];
  const app = await fakeAdminApp(t, { registry, tokens: { operate: OPERATE, read: READ }, woken, settings: new AppSettings(swarm) });
  const put = (payload: unknown, token = OPERATE) => app.inject({ method: 'PUT', url: '/api/apps/web/keep-awake', headers: { authorization: `Bearer ${token}` }, payload: payload as object });
  return { swarm, put, woken };
}

t.test('keep awake until: validated, written as a label, the sleeping app woken now', async (t) => {
  const { swarm, put, woken } = await setup(t);
  const until = new Date(Date.now() + 3_600_000).toISOString();
  t.equal((await put({ until }, READ)).statusCode, 403, 'read-only tokens cannot');
  for (const [body, message] of [
    [{}, /either/],
    [{ until, window: 'Mon 08:00-09:00' }, /either/],
    [{ until: 'tomorrow' }, /ISO date/],
    [{ until: new Date(Date.now() - 1000).toISOString() }, /in the future/],
    [{ until: new Date(Date.now() + 40 * 86_400_000).toISOString() }, /31 days/],
    [{ window: 'Someday 08:00' }, /^window: /],
  ] as const) {
    const res = await put(body);
    t.equal(res.statusCode, 400, JSON.stringify(body));
    t.match(res.json<{ message: string }>().message, message);
  }
  const ok = await put({ until });
  t.equal(ok.statusCode, 200);
  t.equal(swarm.services.get('web')?.labels[LABELS.keepAwakeUntil], until, 'label written');
  await new Promise((r) => setImmediate(r));
  t.same(woken, ['web:ops API: keep awake'], 'woken now: kept awake means awake');
  t.equal((await put({ until: null })).statusCode, 200);
  t.equal(swarm.services.get('web')?.labels[LABELS.keepAwakeUntil], undefined, 'dropped');
  t.equal((await put({ window: 'Mon-Fri 08:00-18:00' })).statusCode, 200);
  t.equal(swarm.services.get('web')?.labels[LABELS.keepAwake], 'Mon-Fri 08:00-18:00');
  t.equal((await put({ window: 'off' })).statusCode, 200);
  t.equal(swarm.services.get('web')?.labels[LABELS.keepAwake], undefined);
});

t.test('the reaper never puts an app to sleep before its keep-awake.until; a bad label is an error naming it', async (t) => {
  const clock = new FakeClock();
  const swarm = new FakeSwarm();
  swarm.add('web', 1);
  const registry = new FakeRegistry([entry('web', { replicas: 1, idleTimeoutMs: 1000, keepAwakeUntil: clock.now() + 60_000 })]);
  const reaper = new IdleReaper({ registry, swarm, coordinator: new FakeCoordinator(swarm.events), store: new MemoryStore(clock.now), sources: [], checkIntervalMs: 1000, log: silentLog, now: clock.now });
  await reaper.check();
  clock.advance(30_000);
  t.equal((await reaper.check())[0]?.decision.action, 'skip', 'idle for 30 s, but held');
  t.equal(swarm.services.get('web')?.replicas, 1);
  clock.advance(31_000);
  t.equal((await reaper.check())[0]?.outcome, 'scaled-down', 'after the hold: the idle rules again');

  const bad = parsePolicy({ id: 'i', name: 'web', labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.test', [LABELS.port]: '80', [LABELS.keepAwakeUntil]: 'soon' } }, { strategy: 'blocking', wakeTimeoutMs: 1, idleTimeoutMs: 1, minAwakeMs: 0, network: undefined });
  t.equal(bad.ok ? undefined : bad.errors[0]?.label, LABELS.keepAwakeUntil);
});
