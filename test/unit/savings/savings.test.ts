// What sleeping saved: folding asleep periods into the labels, memory sources, ranges, the report,
// the reaper writing the measured RSS, the admin routes and the Prometheus gauges.
import t from 'tap';
import type { AppRegistry } from '../../../src/discovery/app-registry.js';
import { buildAdminApp } from '../../../src/http/admin.js';
import { IdleReaper } from '../../../src/idle/reaper.js';
import { OwnTraffic } from '../../../src/idle/traffic.js';
import { LABELS } from '../../../src/labels.js';
import { Metrics } from '../../../src/metrics.js';
import { appSavings, foldAsleep, GIB, memoryPerTask, parseDays, savingsInput, savingsReport, splitByUtcDay, type SavingsInput, type SavingsReport } from '../../../src/savings/savings.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { WakeCoordinator } from '../../../src/wake/coordinator.js';
import { testAuth } from '../../helpers/admin-tokens.js';
import { FakeClock, FakeCoordinator, FakeRegistry, FakeSwarm, entry, silentLog } from '../../helpers/idle-fakes.js';

const at = (s: string) => Date.parse(s);
const MIB = 1024 ** 2;

function asleep(since: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [LABELS.stateSince]: new Date(at(since)).toISOString(), [LABELS.stateReason]: 'idle for 30m', ...extra };
}

t.test('an asleep period is cut at UTC midnights', async (t) => {
  t.same([...splitByUtcDay(at('2026-11-30T23:00:00Z'), at('2026-12-01T01:30:00Z'))], [
    ['2026-11-30', 3600],
    ['2026-12-01', 5400],
  ]);
  t.same([...splitByUtcDay(at('2026-12-01T10:00:00Z'), at('2026-12-01T10:00:05Z'))], [['2026-12-01', 5]]);
});

t.test('a wake folds the asleep period into the labels; awake or unknown folds nothing', async (t) => {
  const woke = foldAsleep(asleep('2026-11-30T22:00:00Z'), 0, 0, at('2026-12-01T02:00:00Z'));
  t.same(woke, {
    [LABELS.savingsAsleepSeconds]: String(4 * 3600),
    [LABELS.savingsAsleepDays]: '2026-11-30:7200,2026-12-01:7200',
    [LABELS.savingsSince]: '2026-11-30T22:00:00.000Z',
  });
  // The next sleep adds to it.
  const again = foldAsleep({ ...asleep('2026-12-01T10:00:00Z'), ...woke }, 0, 0, at('2026-12-01T10:30:00Z'));
  t.equal(again[LABELS.savingsAsleepSeconds], String(4 * 3600 + 1800));
  t.equal(again[LABELS.savingsAsleepDays], '2026-11-30:7200,2026-12-01:9000');
  t.equal(again[LABELS.savingsSince], '2026-11-30T22:00:00.000Z', 'counting began with the first sleep');
  t.same(foldAsleep({ [LABELS.stateSince]: '2026-12-01T10:00:00Z', [LABELS.stateReason]: 'woken: request for x' }, 0, 0, at('2026-12-01T11:00:00Z')), {}, 'the labels say woken: not asleep');
  t.same(foldAsleep(asleep('2026-12-01T10:00:00Z'), 1, 0, at('2026-12-01T11:00:00Z')), {}, 'replicas up: not asleep');
  t.same(foldAsleep({}, 0, 0, at('2026-12-01T11:00:00Z')), {}, 'asleep since unknown: nothing (never invented)');
  t.same(foldAsleep(asleep('2026-12-01T10:00:00Z'), 1, 1, at('2026-12-01T11:00:00Z'))[LABELS.savingsAsleepSeconds], '3600', 'idling at 1 replica is asleep too');
});

t.test('days older than 92 are dropped; malformed parts ignored', async (t) => {
  const old = { ...asleep('2026-12-01T00:00:00Z'), [LABELS.savingsAsleepDays]: '2026-01-01:100,2026-11-30:50,bogus,2026-11-31x:9' };
  t.equal(foldAsleep(old, 0, 0, at('2026-12-01T00:01:00Z'))[LABELS.savingsAsleepDays], '2026-11-30:50,2026-12-01:60');
  t.same([...parseDays('2026-11-30:50, 2026-11-30:10')], [['2026-11-30', 60]]);
});

t.test('memory: reservation, else limit, else the RSS measured (live, else the label), else unknown', async (t) => {
  t.same(memoryPerTask({ reservation: 64 * MIB, limit: 256 * MIB }, { [LABELS.savingsRss]: '1' }), { bytes: 64 * MIB, source: 'reservation' });
  t.same(memoryPerTask({ limit: 256 * MIB }, {}), { bytes: 256 * MIB, source: 'limit' });
  t.same(memoryPerTask(undefined, { [LABELS.savingsRss]: String(40 * MIB) }), { bytes: 40 * MIB, source: 'rss' });
  t.same(memoryPerTask(undefined, { [LABELS.savingsRss]: String(40 * MIB) }, 45 * MIB), { bytes: 45 * MIB, source: 'rss' }, 'the live figure first');
  t.same(memoryPerTask(undefined, { [LABELS.savingsRss]: 'lots' }), { bytes: null, source: 'unknown' });
});

function input(service: string, labels: Record<string, string>, over: Partial<SavingsInput> = {}): SavingsInput {
  return { service, labels, replicas: 0, wakeReplicas: 1, idleReplicas: 0, ...over };
}

t.test('per app: all time is the total plus the sleep going on; a range counts whole UTC days', async (t) => {
  const labels = { ...asleep('2026-12-01T09:00:00Z'), [LABELS.savingsAsleepSeconds]: '86400', [LABELS.savingsAsleepDays]: '2026-11-20:43200,2026-11-30:43200' };
  const now = at('2026-12-01T10:00:00Z');
  const all = appSavings(input('web', labels, { memory: { reservation: GIB }, wakeReplicas: 2 }), { to: now });
  t.equal(all.asleepSeconds, 86400 + 3600);
  t.equal(all.tasksFreed, 2);
  t.equal(all.savedGiBHours, (86400 + 3600) / 3600 * 2, 'GiB × hours × tasks');
  t.equal(all.asleepNow, true);
  const week = appSavings(input('web', labels, { memory: { reservation: GIB } }), { from: now - 7 * 86_400_000, to: now });
  t.equal(week.asleepSeconds, 43200 + 3600, 'the 20th is out of the week, the 30th in, plus today');
  const today = appSavings(input('web', labels), { from: now - 60_000, to: now });
  t.equal(today.asleepSeconds, 3600, 'from today 00:00 UTC: the current sleep');
  t.equal(today.savedGiBHours, null, 'unknown memory: no figure rather than a wrong one');
  t.equal(today.memorySource, 'unknown');
});

t.test('the report groups by environment', async (t) => {
  const now = at('2026-12-01T10:00:00Z');
  const env = (e: string) => ({ [LABELS.deployEnv]: e, [LABELS.deployApp]: 'shop' });
  const r = savingsReport(
    [
      input('shop-mr-1_web', { ...asleep('2026-12-01T09:00:00Z'), ...env('mr-1') }, { memory: { reservation: 512 * MIB } }),
      input('shop-mr-1_worker', { ...asleep('2026-12-01T09:30:00Z'), ...env('mr-1') }, { memory: { limit: 256 * MIB } }),
      input('shop-mr-2_web', { ...asleep('2026-12-01T08:00:00Z'), ...env('mr-2') }),
      input('blog', {}, { replicas: 1 }),
    ],
    { to: now },
  );
  t.same(r.environments.map((e) => [e.env, e.apps, e.asleepSeconds, e.savedGiBHours, e.unknownMemory]), [
    ['-', 1, 0, 0, 1],
    ['mr-1', 2, 5400, 0.5 + 0.125, 0],
    ['mr-2', 1, 7200, 0, 1],
  ]);
  t.equal(r.total.savedGiBHours, 0.625);
  t.equal(r.from, null);
  t.equal(r.apps.find((a) => a.service === 'shop-mr-1_web')?.app, 'shop');
  const since = savingsReport([], { from: now - 3_600_000, to: now });
  t.equal(since.from, '2026-12-01T00:00:00.000Z', 'the range starts at a UTC midnight, and says so');
});

t.test('the reaper writes the measured RSS with the idle scale-down, in the same update', async (t) => {
  const clock = new FakeClock();
  const registry = new FakeRegistry([entry('web', { replicas: 1, idleTimeoutMs: 1000 })]);
  const swarm = new FakeSwarm();
  swarm.add('web', 1);
  const reaper = new IdleReaper({ registry, swarm, coordinator: new FakeCoordinator(), store: new MemoryStore(clock.now), sources: [], checkIntervalMs: 1000, log: silentLog, now: clock.now, rssOf: () => 42 * MIB });
  await reaper.check();
  clock.advance(2000);
  await reaper.check();
  const call = swarm.scaleCalls.at(-1);
  t.equal(call?.replicas, 0);
  t.equal(call?.options.labels?.[LABELS.savingsRss], String(42 * MIB));
  t.equal(call?.options.labels?.[LABELS.stateReason], 'idle for 2s');
});

t.test('/api/report, the savings in /api/apps, and the Prometheus gauges', async (t) => {
  const now = Date.now();
  const labels = { [LABELS.stateSince]: new Date(now - 3_600_000).toISOString(), [LABELS.stateReason]: 'idle for 30m', [LABELS.deployEnv]: 'mr-9' };
  const web = { ...entry('web', { replicas: 0, labels }), memory: { reservation: 2 * GIB } };
  const registry = new FakeRegistry([web]);
  const metrics = new Metrics({ defaultMetrics: false });
  const savings = () => registry.all().map((e) => savingsInput(e));
  metrics.readSavingsFrom(savings);
  const { auth, headers } = testAuth();
  const app = await buildAdminApp({
    registry: registry as unknown as AppRegistry,
    coordinator: { isWaking: () => false, failureOf: () => undefined } as unknown as WakeCoordinator,
    traffic: new OwnTraffic(),
    metrics,
    log: silentLog,
    auth,
    savings,
  });
  t.teardown(() => app.close());
  const report = await app.inject({ url: '/api/report?since=7d', headers });
  t.equal(report.statusCode, 200);
  const body = report.json<SavingsReport>();
  const first = body.apps[0]!;
  t.match(body, { environments: [{ env: 'mr-9', apps: 1 }], total: { apps: 1 } });
  t.ok(Math.abs(first.asleepSeconds - 3600) < 5, `asleep ~1 h (${first.asleepSeconds})`);
  t.ok(Math.abs((first.savedGiBHours ?? 0) - 2) < 0.01, `2 GiB for 1 h (${first.savedGiBHours})`);
  t.equal(first.memorySource, 'reservation');
  const bad = await app.inject({ url: '/api/report?since=soon', headers });
  t.equal(bad.statusCode, 400);
  t.match(bad.json<{ message: string }>().message, /^since: /);
  t.equal((await app.inject({ url: '/api/report' })).statusCode, 401, 'behind the token like every admin route');
  const apps = (await app.inject({ url: '/api/apps', headers })).json<Array<{ savings: unknown }>>();
  t.match(apps[0]?.savings, { memorySource: 'reservation', memoryPerTaskBytes: 2 * GIB, tasksFreed: 1, env: 'mr-9' });
  const text = (await app.inject({ url: '/metrics' })).body;
  t.match(text, /activator_asleep_seconds\{app="web",env="mr-9"\} 36\d\d/);
  t.match(text, /activator_saved_memory_gib_hours\{app="web",env="mr-9"\} 2(\.\d+)?\n/);
  t.match(text, /activator_app_memory_bytes\{app="web",source="reservation"\} 2147483648\n/);
});

t.test('an app that never slept has nothing saved, and its memory is unknown until measured', async (t) => {
  const r = appSavings(savingsInput(entry('fresh', { replicas: 1 })), { to: Date.now() });
  t.match(r, { asleepSeconds: 0, asleepNow: false, memorySource: 'unknown', savedGiBHours: null });
  t.match(appSavings(savingsInput(entry('fresh', { replicas: 1 }), 30 * MIB), { to: Date.now() }), { memorySource: 'rss', memoryPerTaskBytes: 30 * MIB, savedGiBHours: 0 });
});
