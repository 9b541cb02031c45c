// The idle path at the HTTP edge, with fakes and inject(): the uptime-monitor answer in the proxy
// app, the ops routes and /metrics in the admin app.
import t from 'tap';
import { AppSettings } from '../../../src/apps/app-settings.js';
import type { AppRegistry } from '../../../src/discovery/app-registry.js';
import { buildAdminApp } from '../../../src/http/admin.js';
import { buildProxyApp } from '../../../src/http/app.js';
import { IdleReaper } from '../../../src/idle/reaper.js';
import { OwnTrafficSource } from '../../../src/idle/sources/own-traffic.js';
import { OwnTraffic } from '../../../src/idle/traffic.js';
import { LABELS } from '../../../src/labels.js';
import { Metrics } from '../../../src/metrics.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { ServiceInfo } from '../../../src/swarm/swarm.js';
import type { WakeCoordinator } from '../../../src/wake/coordinator.js';
import { testAuth } from '../../helpers/admin-tokens.js';
import { FakeClock, FakeRegistry, FakeSwarm, entry, silentLog } from '../../helpers/idle-fakes.js';

class Registry extends FakeRegistry {
  byHost(host: string | undefined) {
    return this.all().find((e) => e.policy.hosts.includes((host ?? '').split(':')[0] ?? ''));
  }
}

function coordinatorFake() {
  const calls: string[] = [];
  const fake = {
    calls,
    waking: new Set<string>(),
    endpointFor: () => undefined,
    isKnownReady: () => false,
    isWaking: (s: string) => fake.waking.has(s),
    invalidate: (s: string) => void calls.push(`invalidate:${s}`),
    ensureReady: async (e: { policy: { service: string } }) => {
      calls.push(`ensureReady:${e.policy.service}`);
      throw new Error('not in this test');
    },
    ensureReadyDetail: async (e: { policy: { service: string } }) => fake.ensureReady(e),
    // What a held request calls (src/http/chain.ts).
    joinWake: async (e: { policy: { service: string } }) => {
      calls.push(`joinWake:${e.policy.service}`);
      throw new Error('not in this test');
    },
    failureOf: () => undefined,
    wakeNow: async (e: { policy: { service: string } }, _signal: AbortSignal, reason: string) => {
      calls.push(`wakeNow:${e.policy.service}:${reason}`);
    },
  };
  return fake;
}

const monitorConfig = {
  maxBodyBytes: 1024,
  maxHeldPerApp: 10,
  retryAfterSeconds: 5,
  internalPrefix: '/__activator',
  monitorUserAgents: /UptimeRobot|Uptime-Kuma/i,
  monitorPaths: /^\/(healthz|ping)$/,
  monitorStatus: 299,
};

t.test('uptime monitors get the cheap answer: no wake, no activity', async (t) => {
  const registry = new Registry([entry('web', { replicas: 0 }), entry('up', { replicas: 1 })]);
  const coordinator = coordinatorFake();
  const traffic = new OwnTraffic();
  const seen: string[] = [];
  traffic.onActivity((app) => seen.push(app));
  const metrics = new Metrics({ defaultMetrics: false });
  const app = await buildProxyApp({ config: monitorConfig, registry: registry as unknown as AppRegistry, coordinator: coordinator as unknown as WakeCoordinator, traffic, metrics, log: silentLog });
  t.teardown(() => app.close());

  const byUa = await app.inject({ method: 'GET', url: '/', headers: { host: 'web.example.test', 'user-agent': 'Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)' } });
  t.equal(byUa.statusCode, 299, 'the configured status');
  t.equal(byUa.headers['x-activator-state'], 'asleep');
  t.equal(byUa.headers['cache-control'], 'no-store');
  t.equal(byUa.body, 'asleep\n');

  const byPath = await app.inject({ method: 'GET', url: '/ping?x=1', headers: { host: 'web.example.test', 'user-agent': 'curl/8' } });
  t.equal(byPath.statusCode, 299, 'path pattern, query ignored');

  const awake = await app.inject({ method: 'HEAD', url: '/', headers: { host: 'up.example.test', 'user-agent': 'Uptime-Kuma/1.23' } });
  t.equal(awake.statusCode, 299, 'an awake app: answered by the activator too, not proxied');
  t.equal(awake.headers['x-activator-state'], 'awake');

  coordinator.waking.add('web');
  const waking = await app.inject({ method: 'GET', url: '/healthz', headers: { host: 'web.example.test' } });
  t.equal(waking.headers['x-activator-state'], 'waking');

  t.same(coordinator.calls, [], 'no wake was started');
  t.same(seen, [], 'no activity was recorded');
  t.equal(traffic.open('web'), 0);
  t.same((await metrics.monitorRequests.get()).values.map((v) => [v.labels.app, v.value]), [['web', 3], ['up', 1]]);

  const unknown = await app.inject({ method: 'GET', url: '/', headers: { host: 'nobody.example.test', 'user-agent': 'UptimeRobot/2.0' } });
  t.equal(unknown.statusCode, 404, 'an unknown host is still 404');

  const user = await app.inject({ method: 'GET', url: '/', headers: { host: 'web.example.test', 'user-agent': 'Mozilla/5.0' } });
  t.not(user.statusCode, 299, 'an ordinary request takes the wake path');
  t.same(coordinator.calls, ['joinWake:web']);
  t.same(seen.slice(0, 1), ['web'], 'and is activity');
});

function adminSetup() {
  const clock = new FakeClock();
  const registry = new Registry([entry('web', { replicas: 1, idleTimeoutMs: 30_000 })]);
  const swarm = new FakeSwarm();
  swarm.add('web', 1);
  const labelCalls: Array<[string, Record<string, string>]> = [];
  const swarmWithLabels = Object.assign(swarm, {
    async updateServiceLabels(name: string, add: Record<string, string>): Promise<ServiceInfo> {
      labelCalls.push([name, add]);
      const s = swarm.services.get(name)!;
      s.labels = { ...s.labels, ...add };
      s.version += 1;
      return { ...s };
    },
  });
  const coordinator = coordinatorFake();
  const traffic = new OwnTraffic();
  const metrics = new Metrics({ defaultMetrics: false });
  const reaper = new IdleReaper({ registry, swarm, coordinator, store: new MemoryStore(clock.now), sources: [new OwnTrafficSource(traffic)], checkIntervalMs: 1000, log: silentLog, metrics, now: clock.now });
  return { clock, registry, swarm: swarmWithLabels, labelCalls, coordinator, traffic, metrics, reaper, auth: testAuth() };
}

t.test('PUT /api/apps/:service/idle-timeout validates and writes the label', async (t) => {
  const f = adminSetup();
  const app = await buildAdminApp({ registry: f.registry as unknown as AppRegistry, coordinator: f.coordinator as unknown as WakeCoordinator, traffic: f.traffic, metrics: f.metrics, log: silentLog, settings: new AppSettings(f.swarm), reaper: f.reaper, auth: f.auth.auth });
  t.teardown(() => app.close());
  const put = (service: string, body: unknown) => app.inject({ method: 'PUT', url: `/api/apps/${service}/idle-timeout`, payload: body as object, headers: f.auth.headers });

  const ok = await put('web', { idleTimeout: '10m' });
  t.equal(ok.statusCode, 200);
  t.same(ok.json(), { service: 'web', idleTimeout: '10m', idleTimeoutMs: 600_000, previousIdleTimeoutMs: 30_000, version: 11 });
  t.same(f.labelCalls, [['web', { [LABELS.idleTimeout]: '10m' }]]);

  for (const [body, why] of [
    [{ idleTimeout: 'soon' }, 'not a duration'],
    [{ idleTimeout: '500ms' }, 'below 1s'],
    [{ idleTimeout: '400d' }, 'above 30d'],
    [{ idleTimeout: 600 }, 'not a string'],
    [{}, 'missing'],
  ] as const) {
    const r = await put('web', body);
    t.equal(r.statusCode, 400, why);
    t.equal(r.json<{ error: string }>().error, 'SA_BAD_REQUEST');
    t.match(r.json<{ message: string }>().message, /^idleTimeout: /, 'the message names the field');
  }
  t.equal(f.labelCalls.length, 1, 'nothing written for a bad value');
  const missing = await put('nope', { idleTimeout: '10m' });
  t.equal(missing.statusCode, 404);
});

t.test('POST sleep and wake', async (t) => {
  const f = adminSetup();
  const app = await buildAdminApp({ registry: f.registry as unknown as AppRegistry, coordinator: f.coordinator as unknown as WakeCoordinator, traffic: f.traffic, metrics: f.metrics, log: silentLog, settings: new AppSettings(f.swarm), reaper: f.reaper, auth: f.auth.auth });
  t.teardown(() => app.close());

  const end = f.traffic.begin('web');
  const busy = await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: f.auth.headers });
  t.equal(busy.statusCode, 409, 'a request is open through the activator');
  t.same(busy.json(), { service: 'web', outcome: 'busy' });
  end();
  const slept = await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: f.auth.headers });
  t.equal(slept.statusCode, 200);
  t.same(slept.json(), { service: 'web', outcome: 'scaled-down' });
  t.equal(f.swarm.services.get('web')?.replicas, 0);
  t.equal(f.swarm.services.get('web')?.labels[LABELS.stateReason], 'sleep: ops API');

  const woke = await app.inject({ method: 'POST', url: '/api/apps/web/wake', headers: f.auth.headers });
  t.equal(woke.statusCode, 200);
  t.equal(woke.json<{ state: string }>().state, 'awake');
  t.same(f.coordinator.calls.filter((c) => c.startsWith('wakeNow')), ['wakeNow:web:ops API']);
  t.equal(f.reaper.activity.localLatest('web'), f.clock.t, 'an ops wake counts as activity');
  t.equal((await app.inject({ method: 'POST', url: '/api/apps/nope/wake', headers: f.auth.headers })).statusCode, 404);
});

t.test('/metrics shows the idle scale-down, the state and the seconds since activity', async (t) => {
  const f = adminSetup();
  const app = await buildAdminApp({ registry: f.registry as unknown as AppRegistry, coordinator: f.coordinator as unknown as WakeCoordinator, traffic: f.traffic, metrics: f.metrics, log: silentLog, settings: new AppSettings(f.swarm), reaper: f.reaper, auth: f.auth.auth });
  t.teardown(() => app.close());
  f.metrics.setState('web', 'awake');
  await f.reaper.check();
  f.clock.advance(12_000);
  await f.reaper.check();
  let text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(text, /activator_seconds_since_last_activity\{app="web"\} 12\n/);
  t.match(text, /activator_app_state\{app="web",state="awake"\} 1\n/);
  f.clock.advance(30_000);
  await f.reaper.check();
  text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(text, /activator_idle_scale_downs_total\{app="web"\} 1\n/);
  t.match(text, /activator_app_state\{app="web",state="asleep"\} 1\n/);
  t.match(text, /activator_app_state\{app="web",state="awake"\} 0\n/);
  t.match(text, /activator_seconds_since_last_activity\{app="web"\} 42\n/);
});

t.test('admin errors are rows of the error table: 501 SA_NOT_CONFIGURED without Docker or reaper, a table 404 for an unknown route', async (t) => {
  const f = adminSetup();
  const app = await buildAdminApp({ registry: f.registry as unknown as AppRegistry, coordinator: f.coordinator as unknown as WakeCoordinator, traffic: f.traffic, metrics: f.metrics, log: silentLog, auth: f.auth.auth });
  t.teardown(() => app.close());
  for (const [method, url, body] of [
    ['PUT', '/api/apps/web/idle-timeout', { idleTimeout: '10m' }],
    ['POST', '/api/apps/web/sleep', undefined],
    ['PUT', '/api/apps/web/keep-awake', { until: null }],
  ] as const) {
    const r = await app.inject({ method, url, headers: f.auth.headers, ...(body ? { payload: body } : {}) });
    t.equal(r.statusCode, 501, `${method} ${url}`);
    t.equal(r.headers['x-activator-error'], 'SA_NOT_CONFIGURED');
    t.equal(r.json<{ error: string }>().error, 'SA_NOT_CONFIGURED');
  }
  const unknown = await app.inject({ method: 'GET', url: '/api/nothing-here?x=1', headers: f.auth.headers });
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.headers['x-activator-error'], 'SA_NOT_FOUND');
  t.same(unknown.json(), { error: 'SA_NOT_FOUND', status: 404, message: 'no admin route GET /api/nothing-here' });
  const badJson = await app.inject({ method: 'PUT', url: '/api/apps/web/idle-timeout', headers: { ...f.auth.headers, 'content-type': 'application/json' }, payload: '{"idleTimeout": ' });
  t.equal(badJson.statusCode, 400, 'fastify’s own client errors keep their status');
  t.equal(badJson.headers['x-activator-error'], 'SA_BAD_REQUEST');
});
