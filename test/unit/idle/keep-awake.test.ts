// Keep-awake windows with a fake clock: parsing and its errors, time zones, DST changes both ways,
// windows past midnight, lead time; the reaper never sleeps an app inside its window; the
// scheduler wakes it once per window at start − lead.
import t from 'tap';
import { keepAwakeState, parseWindows, spansBetween, type KeepAwakeSchedule } from '../../../src/idle/keep-awake.js';
import { KeepAwakeScheduler } from '../../../src/idle/keep-awake-scheduler.js';
import { IdleReaper } from '../../../src/idle/reaper.js';
import { OwnTrafficSource } from '../../../src/idle/sources/own-traffic.js';
import { OwnTraffic } from '../../../src/idle/traffic.js';
import { LABELS, parseKeepAwake, parsePolicy } from '../../../src/labels.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { FakeClock, FakeCoordinator, FakeRegistry, FakeSwarm, entry, silentLog } from '../../helpers/idle-fakes.js';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
const at = (text: string) => Date.parse(text);

function schedule(spec: string, timezone = 'UTC', leadMs = 120_000): KeepAwakeSchedule {
  return { spec, windows: parseWindows(spec), timezone, leadMs };
}

t.test('parsing: days, ranges that wrap, several windows, 24:00', async (t) => {
  const [w] = parseWindows('Mon-Fri 08:00-18:00');
  t.same([...w!.days], [1, 2, 3, 4, 5]);
  t.same([w!.startMinute, w!.endMinute], [480, 1080]);
  t.same([...parseWindows('fri-mon 22:00-02:00')[0]!.days], [5, 6, 7, 1], 'wraps over the weekend, case-insensitive');
  t.same([...parseWindows('Sunday 9:30-24:00')[0]!.days], [7]);
  t.equal(parseWindows('Sunday 9:30-24:00')[0]!.endMinute, 1440);
  t.equal(parseWindows('08:00-18:00')[0]!.days.size, 7, 'no days: every day');
  t.equal(parseWindows('daily 08:00-18:00')[0]!.days.size, 7);
  t.equal(parseWindows('Mon-Fri 08:00-12:00, Sat 10:00 - 14:00').length, 2);
  for (const [bad, why] of [
    ['', /expected windows/],
    ['Mon-Fry 08:00-18:00', /"Fry" is not a day/],
    ['Mon-Fri 8-18', /expected "\[days\] HH:MM-HH:MM"/],
    ['Mon 25:00-26:00', /"25:00" is not a time/],
    ['Mon 08:60-09:00', /"08:60" is not a time/],
    ['Mon 24:00-02:00', /"24:00" is not a time/],
    ['Mon 08:00-08:00', /empty/],
    ['Mon 08:00-09:00,', /expected windows/],
  ] as const) {
    t.throws(() => parseWindows(bad), { message: why }, `"${bad}"`);
  }
});

t.test('labels: the window, the zone (label, else the default), the lead; errors name the label', async (t) => {
  const s = parseKeepAwake({ [LABELS.keepAwake]: 'Mon-Fri 08:00-18:00', [LABELS.timezone]: 'Europe/Berlin', [LABELS.keepAwakeLead]: '5m' }, 'UTC');
  t.match(s, { spec: 'Mon-Fri 08:00-18:00', timezone: 'Europe/Berlin', leadMs: 300_000 });
  t.match(parseKeepAwake({ [LABELS.keepAwake]: '08:00-18:00' }, 'America/New_York'), { timezone: 'America/New_York', leadMs: 120_000 }, 'ACTIVATOR_TIMEZONE, lead 2m');
  t.equal(parseKeepAwake({ [LABELS.keepAwake]: 'off' }, 'UTC'), undefined);
  const base = { id: 'x', name: 'web', labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.example.com', [LABELS.port]: '80' } };
  const defaults = { strategy: 'blocking' as const, wakeTimeoutMs: 1, idleTimeoutMs: 1, minAwakeMs: 0, network: undefined, timezone: 'UTC' };
  for (const [labels, label, message] of [
    [{ [LABELS.keepAwake]: 'Mon-Fry 08:00-18:00' }, LABELS.keepAwake, /"Fry" is not a day/],
    [{ [LABELS.keepAwake]: '08:00-18:00', [LABELS.timezone]: 'Mars/Olympus_Mons' }, LABELS.timezone, /"Mars\/Olympus_Mons" is not an IANA time zone/],
    [{ [LABELS.keepAwake]: '08:00-18:00', [LABELS.keepAwakeLead]: 'soon' }, LABELS.keepAwakeLead, /invalid duration/],
    [{ [LABELS.keepAwake]: '08:00-18:00', [LABELS.keepAwakeLead]: '2d' }, LABELS.keepAwakeLead, /longer than 1d/],
  ] as const) {
    const r = parsePolicy({ ...base, labels: { ...base.labels, ...labels } }, defaults);
    t.notOk(r.ok, `${label} broken`);
    if (!r.ok) t.match(r.errors, [{ label, message }]);
  }
  const ok = parsePolicy({ ...base, labels: { ...base.labels, [LABELS.keepAwake]: 'Mon-Fri 08:00-18:00' } }, defaults);
  t.ok(ok.ok && ok.policy.keepAwake?.windows.length === 1);
});

t.test('Europe/Berlin across the spring DST change: the wall clock stays 08:00-18:00', async (t) => {
  const s = schedule('Mon-Fri 08:00-18:00', 'Europe/Berlin');
  // Fri 27 Mar 2026 is CET (UTC+1); Mon 30 Mar 2026 is CEST (UTC+2): clocks went forward on Sun 29 Mar.
  const fri = keepAwakeState(s, at('2026-03-27T12:00:00Z'));
  t.ok(fri.active);
  t.same([iso(fri.current?.start), iso(fri.current?.end)], ['2026-03-27T07:00:00.000Z', '2026-03-27T17:00:00.000Z']);
  const friEvening = keepAwakeState(s, at('2026-03-27T17:00:00Z'));
  t.notOk(friEvening.active, 'the end is exclusive');
  t.same([iso(friEvening.next?.start), iso(friEvening.next?.end)], ['2026-03-30T06:00:00.000Z', '2026-03-30T16:00:00.000Z'], 'Monday, one hour earlier in UTC');
  t.notOk(keepAwakeState(s, at('2026-03-28T12:00:00Z')).holding, 'not on Saturday');
  const lead = keepAwakeState(s, at('2026-03-30T05:58:30Z'));
  t.ok(lead.holding, 'within the 2 min lead time');
  t.notOk(lead.active, 'but not inside the window yet');
  t.notOk(keepAwakeState(s, at('2026-03-30T05:57:59Z')).holding, 'before the lead time');
});

t.test('a night window over the DST changes is 7 h in spring and 9 h in autumn', async (t) => {
  const s = schedule('Sat 22:00-06:00', 'Europe/Berlin');
  const spring = spansBetween(s, at('2026-03-28T12:00:00Z'), at('2026-03-29T12:00:00Z'));
  t.same(spring.map((x) => [iso(x.start), iso(x.end)]), [['2026-03-28T21:00:00.000Z', '2026-03-29T04:00:00.000Z']]);
  t.equal((spring[0]!.end - spring[0]!.start) / 3_600_000, 7);
  const autumn = spansBetween(s, at('2026-10-24T12:00:00Z'), at('2026-10-25T12:00:00Z'));
  t.same(autumn.map((x) => [iso(x.start), iso(x.end)]), [['2026-10-24T20:00:00.000Z', '2026-10-25T05:00:00.000Z']]);
  t.equal((autumn[0]!.end - autumn[0]!.start) / 3_600_000, 9);
  t.ok(keepAwakeState(s, at('2026-10-25T01:30:00Z')).active, 'during the repeated hour');
});

t.test('a window that starts in the DST gap begins when the clocks have jumped', async (t) => {
  // 02:30 does not exist in Berlin on 29 Mar 2026 (02:00 → 03:00): the window starts at 03:30 CEST.
  const [span] = spansBetween(schedule('Sun 02:30-04:00', 'Europe/Berlin'), at('2026-03-29T00:00:00Z'), at('2026-03-29T06:00:00Z'));
  t.same([iso(span?.start), iso(span?.end)], ['2026-03-29T01:30:00.000Z', '2026-03-29T02:00:00.000Z']);
});

t.test('America/New_York changes on other dates (8 Mar and 1 Nov 2026)', async (t) => {
  const s = schedule('Mon-Fri 09:00-17:00', 'America/New_York');
  t.equal(iso(keepAwakeState(s, at('2026-03-06T20:00:00Z')).current?.start), '2026-03-06T14:00:00.000Z', 'EST: UTC-5');
  t.equal(iso(keepAwakeState(s, at('2026-03-09T15:00:00Z')).current?.start), '2026-03-09T13:00:00.000Z', 'EDT: UTC-4');
  t.equal(iso(keepAwakeState(s, at('2026-11-02T15:00:00Z')).current?.start), '2026-11-02T14:00:00.000Z', 'EST again');
});

t.test('windows past midnight belong to the day they start', async (t) => {
  const s = schedule('Fri 22:00-02:00', 'UTC', 0);
  t.notOk(keepAwakeState(s, at('2026-12-04T21:59:59Z')).holding, 'Fri 21:59');
  t.ok(keepAwakeState(s, at('2026-12-04T22:00:00Z')).active, 'Fri 22:00');
  t.ok(keepAwakeState(s, at('2026-12-05T01:59:00Z')).active, 'Sat 01:59');
  t.notOk(keepAwakeState(s, at('2026-12-05T02:00:00Z')).active, 'Sat 02:00');
  t.notOk(keepAwakeState(s, at('2026-12-04T01:00:00Z')).active, 'Fri 01:00 is Thursday night: not in the window');
  t.equal(iso(keepAwakeState(s, at('2026-12-05T03:00:00Z')).next?.start), '2026-12-11T22:00:00.000Z', 'next Friday');
});

t.test('touching windows merge; 24:00 meets 00:00 of the next day', async (t) => {
  const s = schedule('Mon-Fri 08:00-12:00, Mon-Fri 12:00-18:00, Sat 20:00-24:00, Sun 00:00-03:00');
  const mon = keepAwakeState(s, at('2026-11-30T09:00:00Z'));
  t.same([iso(mon.current?.start), iso(mon.current?.end)], ['2026-11-30T08:00:00.000Z', '2026-11-30T18:00:00.000Z']);
  const sat = keepAwakeState(s, at('2026-12-05T23:00:00Z'));
  t.same([iso(sat.current?.start), iso(sat.current?.end)], ['2026-12-05T20:00:00.000Z', '2026-12-06T03:00:00.000Z']);
});

t.test('the state is cached until the next boundary, and follows a clock that jumps', async (t) => {
  const s = schedule('Mon-Fri 08:00-18:00');
  t.notOk(keepAwakeState(s, at('2026-11-30T07:00:00Z')).holding);
  t.ok(keepAwakeState(s, at('2026-11-30T07:58:00Z')).holding, 'the lead-time boundary ends the cache');
  t.ok(keepAwakeState(s, at('2026-11-30T17:59:59Z')).active);
  t.notOk(keepAwakeState(s, at('2026-11-30T18:00:00Z')).holding);
  t.ok(keepAwakeState(s, at('2026-11-30T12:00:00Z')).active, 'back in time');
  t.ok(keepAwakeState(s, at('2026-12-25T12:00:00Z')).active, 'weeks later (a Friday)');
});

function reaperSetup(spec: string, now: string) {
  const clock = new FakeClock(at(now));
  const keepAwake = schedule(spec, 'UTC', 120_000);
  const web = entry('web', { replicas: 1, idleTimeoutMs: 60_000, keepAwake });
  const registry = new FakeRegistry([web]);
  const swarm = new FakeSwarm();
  swarm.add('web', 1);
  const coordinator = Object.assign(new FakeCoordinator(), {
    woken: [] as string[],
    async wakeNow(e: { policy: { service: string } }, _signal: AbortSignal, reason: string) {
      coordinator.woken.push(`${e.policy.service}: ${reason}`);
      swarm.services.get('web')!.replicas = 1;
      registry.set({ ...registry.byService('web')!, replicas: 1 });
    },
  });
  const traffic = new OwnTraffic();
  const reaper = new IdleReaper({ registry, swarm, coordinator, store: new MemoryStore(clock.now), sources: [new OwnTrafficSource(traffic)], checkIntervalMs: 1000, log: silentLog, now: clock.now });
  const scheduler = new KeepAwakeScheduler({ registry, coordinator, log: silentLog, now: clock.now, onWoken: (s) => reaper.touch(s) });
  const sync = () => registry.set({ ...registry.byService('web')!, replicas: swarm.services.get('web')!.replicas });
  return { clock, registry, swarm, coordinator, reaper, scheduler, sync };
}

t.test('the reaper never sleeps an app inside its window; after it, the idle rules apply', async (t) => {
  const f = reaperSetup('Mon-Fri 08:00-18:00', '2026-11-30T09:00:00Z');
  await f.reaper.check();
  f.clock.advance(5 * 3_600_000); // 14:00, idle for 5 h with a 1 min idle timeout
  const [inside] = await f.reaper.check();
  t.match(inside?.decision, { action: 'skip', reason: 'keep-awake' });
  t.equal(f.swarm.services.get('web')?.replicas, 1, 'still up');
  f.clock.t = at('2026-11-30T18:00:30Z');
  const [after] = await f.reaper.check();
  t.match(after, { decision: { action: 'scale-down' }, outcome: 'scaled-down' }, 'asleep soon after 18:00');
  t.equal(f.swarm.services.get('web')?.replicas, 0);
});

t.test('a group member in its window holds the whole group up', async (t) => {
  const f = reaperSetup('Mon-Fri 08:00-18:00', '2026-11-30T09:00:00Z');
  const worker = entry('worker', { replicas: 1, idleTimeoutMs: 60_000, group: 'web', http: false });
  f.registry.set({ ...f.registry.byService('web')!, policy: { ...f.registry.byService('web')!.policy, group: 'web' } });
  f.registry.set(worker);
  f.swarm.add('worker', 1);
  await f.reaper.check();
  f.clock.advance(3_600_000);
  const results = await f.reaper.check();
  t.match(results.find((r) => r.app === 'worker')?.decision, { action: 'skip', reason: 'keep-awake' });
});

t.test('ops sleep wins inside the window; the scheduler does not undo it', async (t) => {
  const f = reaperSetup('Mon-Fri 08:00-18:00', '2026-11-30T09:00:00Z');
  await Promise.all(f.scheduler.tick());
  t.same(f.coordinator.woken, [], 'already awake: nothing to do');
  t.equal(await f.reaper.scaleDown(f.registry.byService('web')!, { reason: 'sleep: ops API', force: true }), 'scaled-down');
  f.sync();
  f.clock.advance(60_000);
  await Promise.all(f.scheduler.tick());
  t.same(f.coordinator.woken, [], 'this occurrence was handled');
});

t.test('the scheduler wakes a sleeping app at start − lead, once per window', async (t) => {
  const f = reaperSetup('Mon-Fri 08:00-18:00', '2026-11-30T07:57:00Z');
  f.swarm.services.get('web')!.replicas = 0;
  f.sync();
  await Promise.all(f.scheduler.tick());
  t.same(f.coordinator.woken, [], '07:57: before the 2 min lead');
  f.clock.t = at('2026-11-30T07:58:00Z');
  await Promise.all(f.scheduler.tick());
  t.same(f.coordinator.woken, ['web: keep-awake Mon-Fri 08:00-18:00'], '07:58: woken');
  t.equal(f.reaper.activity.localLatest('web'), at('2026-11-30T07:58:00Z'), 'a full idle timeout from the wake');
  f.clock.advance(30_000);
  await Promise.all(f.scheduler.tick());
  t.equal(f.coordinator.woken.length, 1, 'once');
  const [lead] = await f.reaper.check();
  t.match(lead?.decision, { action: 'skip', reason: 'keep-awake' }, 'the lead time already holds it up');
  // Tuesday's window is a new occurrence.
  f.swarm.services.get('web')!.replicas = 0;
  f.sync();
  f.clock.t = at('2026-12-01T07:59:00Z');
  await Promise.all(f.scheduler.tick());
  t.equal(f.coordinator.woken.length, 2, 'woken again for Tuesday');
});

t.test('an app asleep when the activator first sees its window (e.g. after a restart) is woken then', async (t) => {
  const f = reaperSetup('Mon-Fri 08:00-18:00', '2026-11-30T11:00:00Z');
  f.swarm.services.get('web')!.replicas = 0;
  f.sync();
  await Promise.all(f.scheduler.tick());
  t.same(f.coordinator.woken, ['web: keep-awake Mon-Fri 08:00-18:00']);
});

t.test('ACTIVATOR_TIMEZONE: validated at start-up, the default zone of every schedule', async (t) => {
  const { loadConfig } = await import('../../../src/config.js');
  const { adminTokenEnv } = await import('../../helpers/admin-tokens.js');
  t.equal(loadConfig(adminTokenEnv()).timezone, 'UTC');
  t.equal(loadConfig({ ...adminTokenEnv(), ACTIVATOR_TIMEZONE: 'Europe/Prague' }).timezone, 'Europe/Prague');
  t.throws(() => loadConfig({ ...adminTokenEnv(), ACTIVATOR_TIMEZONE: 'CET+1h' }), { name: 'ConfigError', message: /^ACTIVATOR_TIMEZONE: "CET\+1h" is not an IANA time zone/ });
});

t.test('/api/apps shows the window, whether it holds now, and the next one', async (t) => {
  const { keepAwakeView } = await import('../../../src/idle/keep-awake.js');
  t.equal(keepAwakeView(undefined, 0), null);
  const view = keepAwakeView(schedule('Mon-Fri 08:00-18:00', 'Europe/Berlin'), at('2026-11-30T12:00:00Z'));
  t.same(view, {
    window: 'Mon-Fri 08:00-18:00',
    timezone: 'Europe/Berlin',
    leadMs: 120_000,
    active: true,
    holding: true,
    current: { start: '2026-11-30T07:00:00.000Z', end: '2026-11-30T17:00:00.000Z' },
    next: { start: '2026-12-01T07:00:00.000Z', end: '2026-12-01T17:00:00.000Z' },
  });
});
