// Authentication of the admin app (src/http/admin-auth.ts) through the real admin app and inject():
// every route covered, roles, the metrics token, login/session/logout, Origin checks, expiry,
// bounded sessions, and tokens never in a log line.
import { spawnSync } from 'node:child_process';
import { AppSettings } from '../../../src/apps/app-settings.js';
import { inspect } from 'node:util';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import t from 'tap';
import { adminTokenFrom } from '../../../src/cli/admin-token.js';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { listApps } from '../../../src/deploy/list-apps.js';
import type { AppRegistry } from '../../../src/discovery/app-registry.js';
import { buildAdminApp } from '../../../src/http/admin.js';
import type { AdminAuthOptions } from '../../../src/http/admin-auth.js';
import { IdleReaper } from '../../../src/idle/reaper.js';
import { OwnTrafficSource } from '../../../src/idle/sources/own-traffic.js';
import { OwnTraffic } from '../../../src/idle/traffic.js';
import { LABELS } from '../../../src/labels.js';
import { Metrics } from '../../../src/metrics.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { ServiceInfo, SwarmClient } from '../../../src/swarm/swarm.js';
import type { WakeCoordinator } from '../../../src/wake/coordinator.js';
import { adminTokens, newToken, tokenFile } from '../../helpers/admin-tokens.js';
import { FakeClock, FakeRegistry, FakeSwarm, entry } from '../../helpers/idle-fakes.js';

const OPERATE = newToken();
const READ = newToken();
const METRICS = newToken();

function coordinatorFake() {
  return {
    endpointFor: () => undefined,
    isWaking: () => false,
    invalidate: () => undefined,
    failureOf: () => undefined,
    wakeNow: async () => undefined,
  };
}

async function adminApp(t: { teardown(fn: () => unknown): void }, auth: Partial<AdminAuthOptions> = {}, logLines: string[] = []): Promise<{ app: FastifyInstance; clock: FakeClock }> {
  const clock = new FakeClock();
  const registry = new FakeRegistry([entry('web', { replicas: 1, idleTimeoutMs: 30_000 })]);
  const swarm = Object.assign(new FakeSwarm(), {
    async updateServiceLabels(name: string, add: Record<string, string>): Promise<ServiceInfo> {
      const s = swarm.services.get(name)!;
      s.labels = { ...s.labels, ...add };
      s.version += 1;
      return { ...s };
    },
  });
  swarm.add('web', 1);
  const traffic = new OwnTraffic();
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  const coordinator = coordinatorFake();
  const reaper = new IdleReaper({ registry, swarm, coordinator, store: new MemoryStore(clock.now), sources: [new OwnTrafficSource(traffic)], checkIntervalMs: 1000, log, now: clock.now });
  const app = await buildAdminApp({
    registry: registry as unknown as AppRegistry,
    coordinator: coordinator as unknown as WakeCoordinator,
    traffic,
    metrics: new Metrics({ defaultMetrics: false }),
    log,
    settings: new AppSettings(swarm),
    reaper,
    auth: { tokens: adminTokens({ operate: OPERATE, read: READ }), store: new MemoryStore(clock.now), sessionTtlMs: 3_600_000, now: clock.now, ...auth },
  });
  t.teardown(() => app.close());
  return { app, clock };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const HOST = 'ops.example.com';

t.test('every route but /healthz, /readyz and /metrics needs a token; 401 names the realm', async (t) => {
  const { app } = await adminApp(t);
  // A route added later, by another plugin, is covered as well.
  await app.register(async (child) => {
    child.get('/api/later', async () => ({ later: true }));
    child.post('/api/later', async () => ({ later: true }));
  });
  await app.ready();
  const routes = app.adminRoutes.filter((r) => r.method !== 'HEAD');
  t.ok(routes.length >= 10, `${routes.length} routes listed`);
  // The dashboard's page, script and stylesheet carry no data: public, so the login form loads.
  t.same(routes.filter((r) => r.role === 'public').map((r) => r.url).sort(), ['/', '/dashboard.css', '/dashboard.js', '/healthz', '/login', '/logout', '/metrics', '/readyz']);
  for (const r of routes.filter((x) => x.role !== 'public')) {
    const url = r.url.replace(':service', 'web');
    const res = await app.inject({ method: r.method as 'GET', url, headers: { host: HOST } });
    t.equal(res.statusCode, 401, `${r.method} ${r.url} without a token`);
    t.equal(res.headers['www-authenticate'], 'Bearer realm="swarm-activator"');
    t.match(res.json(), { error: 'SA_UNAUTHORIZED', status: 401 });
    const wrong = await app.inject({ method: r.method as 'GET', url, headers: { ...bearer(newToken()), host: HOST } });
    t.equal(wrong.statusCode, 401, `${r.method} ${r.url} with a wrong token`);
  }
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 200, 'metrics is public without a metrics token');
  t.equal((await app.inject({ url: '/api/later', headers: bearer(READ) })).statusCode, 200);
  t.equal((await app.inject({ method: 'POST', url: '/api/later', headers: bearer(READ) })).statusCode, 403, 'POST defaults to the operator role');
  t.equal((await app.inject({ method: 'POST', url: '/api/later', headers: bearer(OPERATE) })).statusCode, 200);
  // Unknown paths: 401 first (nothing says which routes exist), 404 with a token.
  t.equal((await app.inject({ url: '/nothing/here' })).statusCode, 401);
  t.equal((await app.inject({ url: '/nothing/here', headers: bearer(READ) })).statusCode, 404);
  t.equal((await app.inject({ url: '/healthz/../api/apps' })).statusCode, 401, 'no path spelling reaches around the hook');
  t.equal((await app.inject({ url: '/api/apps', headers: { authorization: `Basic ${Buffer.from(`x:${OPERATE}`).toString('base64')}` } })).statusCode, 401, 'only Bearer');
});

t.test('roles: read-only gets the GET routes, 403 on state-changing ones; a route may ask for more', async (t) => {
  const { app } = await adminApp(t);
  await app.register(async (child) => {
    child.get('/api/secret-view', { config: { role: 'operate' } }, async () => ({ ok: true }));
  });
  const list = await app.inject({ url: '/api/apps', headers: bearer(READ) });
  t.equal(list.statusCode, 200);
  t.equal(list.json<Array<{ service: string }>>()[0]?.service, 'web');
  for (const [method, url, payload] of [
    ['POST', '/api/apps/web/sleep', undefined],
    ['POST', '/api/apps/web/wake', undefined],
    ['PUT', '/api/apps/web/idle-timeout', { idleTimeout: '10m' }],
  ] as const) {
    const res = await app.inject({ method, url, headers: bearer(READ), ...(payload ? { payload } : {}) });
    t.equal(res.statusCode, 403, `${method} ${url} with the read token`);
    t.match(res.json(), { error: 'SA_FORBIDDEN', message: /operator token/ });
  }
  t.equal((await app.inject({ url: '/api/secret-view', headers: bearer(READ) })).statusCode, 403);
  t.equal((await app.inject({ url: '/api/secret-view', headers: bearer(OPERATE) })).statusCode, 200);
  const put = await app.inject({ method: 'PUT', url: '/api/apps/web/idle-timeout', headers: bearer(OPERATE), payload: { idleTimeout: '10m' } });
  t.equal(put.statusCode, 200, 'the operator token changes state, no Origin needed with Bearer');
});

t.test('a metrics token guards /metrics and nothing else', async (t) => {
  const { app } = await adminApp(t, { tokens: adminTokens({ operate: OPERATE, read: READ, metrics: METRICS }) });
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 401);
  t.equal((await app.inject({ url: '/metrics', headers: bearer(METRICS) })).statusCode, 200);
  t.equal((await app.inject({ url: '/metrics', headers: bearer(READ) })).statusCode, 200, 'an admin token reads metrics too');
  t.equal((await app.inject({ url: '/api/apps', headers: bearer(METRICS) })).statusCode, 403, 'the metrics token is no admin token');
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
});

function sessionCookie(res: { headers: Record<string, unknown> }): string {
  const raw = [res.headers['set-cookie']].flat().find((c): c is string => typeof c === 'string' && c.startsWith('sa_session='));
  if (!raw) throw new Error('no sa_session cookie');
  return raw;
}

t.test('login sets an HttpOnly SameSite=Strict session cookie; state changes need a matching Origin', async (t) => {
  const { app } = await adminApp(t);
  const refused = await app.inject({ method: 'POST', url: '/login', headers: { host: HOST }, payload: { token: newToken() } });
  t.equal(refused.statusCode, 401);
  t.equal(refused.headers['set-cookie'], undefined, 'no cookie for a wrong token');
  t.equal((await app.inject({ method: 'POST', url: '/login', headers: { host: HOST }, payload: { token: METRICS } })).statusCode, 401, 'an unknown token');
  t.equal((await app.inject({ method: 'POST', url: '/login', headers: { host: HOST, origin: 'https://evil.example' }, payload: { token: OPERATE } })).statusCode, 403, 'a login posted from another site');

  const login = await app.inject({ method: 'POST', url: '/login', headers: { host: HOST }, payload: { token: OPERATE } });
  t.equal(login.statusCode, 200);
  t.equal(login.json<{ role: string }>().role, 'operate');
  const raw = sessionCookie(login);
  t.match(raw, /; HttpOnly/);
  t.match(raw, /; SameSite=Strict/);
  t.match(raw, /; Path=\//);
  t.notMatch(raw, /Secure/, 'not Secure over plain http');
  const cookie = raw.split(';')[0] as string;
  t.notOk(cookie.includes(OPERATE), 'the cookie is an opaque id, not the token');

  const https = await app.inject({ method: 'POST', url: '/login', headers: { host: HOST, 'x-forwarded-proto': 'https' }, payload: { token: READ } });
  t.match(sessionCookie(https), /; Secure/, 'Secure behind https');

  const session = await app.inject({ url: '/api/session', headers: { host: HOST, cookie } });
  t.same(session.json(), { role: 'operate', via: 'session' });
  t.equal((await app.inject({ url: '/api/apps', headers: { host: HOST, cookie } })).statusCode, 200);

  const noOrigin = await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: { host: HOST, cookie } });
  t.equal(noOrigin.statusCode, 403, 'cookie + state change + no Origin');
  t.match(noOrigin.json<{ message: string }>().message, /Origin/);
  t.equal((await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: { host: HOST, cookie, origin: 'https://evil.example' } })).statusCode, 403, 'foreign Origin');
  t.equal((await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: { host: HOST, cookie, origin: 'null' } })).statusCode, 403, 'opaque Origin');
  t.equal((await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: { host: HOST, cookie, referer: `https://evil.example/${HOST}` } })).statusCode, 403, 'foreign Referer');
  const ok = await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: { host: HOST, cookie, origin: `https://${HOST}` } });
  t.equal(ok.statusCode, 200, 'same Origin');
  t.equal(ok.json<{ outcome: string }>().outcome, 'scaled-down');
  const byReferer = await app.inject({ method: 'PUT', url: '/api/apps/web/idle-timeout', headers: { host: HOST, cookie, referer: `https://${HOST}/apps` }, payload: { idleTimeout: '5m' } });
  t.equal(byReferer.statusCode, 200, 'same-host Referer when there is no Origin');

  const readCookie = sessionCookie(https).split(';')[0] as string;
  t.equal((await app.inject({ method: 'POST', url: '/api/apps/web/wake', headers: { host: HOST, cookie: readCookie, origin: `https://${HOST}` } })).statusCode, 403, 'a read-only session');

  const out = await app.inject({ method: 'POST', url: '/logout', headers: { host: HOST, cookie } });
  t.equal(out.statusCode, 200);
  t.match(sessionCookie(out), /sa_session=;/, 'the cookie is cleared');
  t.equal((await app.inject({ url: '/api/session', headers: { host: HOST, cookie } })).statusCode, 401, 'the session is gone on the server too');
  t.equal((await app.inject({ url: '/api/session', headers: { host: HOST, cookie: 'sa_session=made-up' } })).statusCode, 401);
});

t.test('a form login (urlencoded) redirects to the dashboard', async (t) => {
  const { app } = await adminApp(t);
  const res = await app.inject({ method: 'POST', url: '/login', headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${READ}` });
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, '/');
  const cookie = sessionCookie(res).split(';')[0] as string;
  t.same((await app.inject({ url: '/api/session', headers: { cookie } })).json(), { role: 'read', via: 'session' });
  const big = await app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${'x'.repeat(10_000)}` });
  t.equal(big.statusCode, 413, 'login bodies are small');
});

t.test('sessions expire and are bounded in number', async (t) => {
  const clock = new FakeClock();
  const store = new MemoryStore(clock.now, 2);
  const { app } = await adminApp(t, { store, now: clock.now, sessionTtlMs: 60_000 });
  const login = async () => sessionCookie(await app.inject({ method: 'POST', url: '/login', payload: { token: READ } })).split(';')[0] as string;
  const a = await login();
  t.equal((await app.inject({ url: '/api/session', headers: { cookie: a } })).statusCode, 200);
  clock.advance(60_001);
  t.equal((await app.inject({ url: '/api/session', headers: { cookie: a } })).statusCode, 401, 'expired after its TTL');
  const b = await login();
  const c = await login();
  const d = await login();
  t.equal((await app.inject({ url: '/api/session', headers: { cookie: b } })).statusCode, 401, 'the oldest of three went (bound 2)');
  t.equal((await app.inject({ url: '/api/session', headers: { cookie: c } })).statusCode, 200);
  t.equal((await app.inject({ url: '/api/session', headers: { cookie: d } })).statusCode, 200);
});

t.test('read-only mode: no operator token, state-changing routes are off', async (t) => {
  const { app } = await adminApp(t, { tokens: adminTokens({ read: READ }) });
  t.equal((await app.inject({ url: '/api/apps', headers: bearer(READ) })).statusCode, 200);
  const res = await app.inject({ method: 'POST', url: '/api/apps/web/sleep', headers: bearer(READ) });
  t.equal(res.statusCode, 403);
  t.match(res.json<{ message: string }>().message, /ACTIVATOR_ADMIN_TOKEN_FILE/);
});

t.test('tokens never reach a log line, JSON or inspect output', async (t) => {
  const lines: string[] = [];
  const { app } = await adminApp(t, {}, lines);
  await app.inject({ method: 'POST', url: '/login', payload: { token: OPERATE } });
  await app.inject({ method: 'POST', url: '/login', payload: { token: `${OPERATE}x` } });
  await app.inject({ url: '/api/apps', headers: bearer(`${READ}x`) });
  await app.inject({ method: 'PUT', url: '/api/apps/web/idle-timeout', headers: bearer(OPERATE), payload: { idleTimeout: '10m' } });
  t.ok(lines.some((l) => l.includes('admin login')), 'logins are logged');
  t.ok(lines.some((l) => l.includes('admin login refused')));
  for (const l of lines) t.notOk(l.includes(OPERATE) || l.includes(READ), 'no token in a log line');
  const config = loadConfig({ ACTIVATOR_ADMIN_TOKEN_FILE: tokenFile(OPERATE).path });
  t.equal(config.adminTokens.operate?.reveal(), OPERATE);
  t.notOk(JSON.stringify(config).includes(OPERATE), 'not in JSON');
  t.notOk(inspect(config, { depth: 5 }).includes(OPERATE), 'not in inspect');
  t.notOk(String(config.adminTokens.operate).includes(OPERATE), 'not in String()');
});

t.test('token files at start-up: every problem names its variable', async (t) => {
  const fail = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      return err as ConfigError;
    }
    throw new Error('no error');
  };
  const none = fail({});
  t.ok(none instanceof ConfigError);
  t.equal(none.key, 'ACTIVATOR_ADMIN_TOKEN_FILE', 'no token at all');
  t.equal(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: '/nonexistent/token' }).key, 'ACTIVATOR_ADMIN_TOKEN_FILE');
  t.match(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: '/nonexistent/token' }).message, /cannot read the token file \/nonexistent\/token: ENOENT/);
  t.match(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: tokenFile('   ').path }).message, /^ACTIVATOR_ADMIN_TOKEN_FILE: the token file .* is empty/);
  t.match(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: tokenFile('short').path }).message, /5 characters; use at least 16/);
  const op = tokenFile(OPERATE).path;
  t.equal(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: op, ACTIVATOR_ADMIN_READ_TOKEN_FILE: '/nope' }).key, 'ACTIVATOR_ADMIN_READ_TOKEN_FILE');
  t.equal(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: op, ACTIVATOR_METRICS_TOKEN_FILE: tokenFile('').path }).key, 'ACTIVATOR_METRICS_TOKEN_FILE');
  const twin = fail({ ACTIVATOR_ADMIN_TOKEN_FILE: op, ACTIVATOR_ADMIN_READ_TOKEN_FILE: tokenFile(OPERATE).path });
  t.equal(twin.key, 'ACTIVATOR_ADMIN_READ_TOKEN_FILE');
  t.match(twin.message, /same token as ACTIVATOR_ADMIN_TOKEN_FILE/);
  t.equal(fail({ ACTIVATOR_ADMIN_TOKEN_FILE: op, ACTIVATOR_ADMIN_SESSION_TTL: '10s' }).key, 'ACTIVATOR_ADMIN_SESSION_TTL');
  const readOnly = loadConfig({ ACTIVATOR_ADMIN_READ_TOKEN_FILE: tokenFile(READ).path });
  t.equal(readOnly.adminTokens.operate, undefined, 'a read token alone starts read-only');
  const trimmed = loadConfig({ ACTIVATOR_ADMIN_TOKEN_FILE: tokenFile(`  ${OPERATE}\n\n`).path });
  t.equal(trimmed.adminTokens.operate?.reveal(), OPERATE, 'trimmed');
  t.equal(trimmed.adminSessionTtlMs, 12 * 3_600_000, '12 h sessions by default');
});

t.test('the activator refuses to start without a token, and says which variable', async (t) => {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', ACTIVATOR_ADMIN_PORT: '0', ACTIVATOR_PORT: '0' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.equal(res.status, 78, 'EX_CONFIG');
  const line = JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '{}') as { level?: string; key?: string; msg?: string };
  t.equal(line.level, 'fatal');
  t.equal(line.key, 'ACTIVATOR_ADMIN_TOKEN_FILE');
  t.match(line.msg, /ACTIVATOR_ADMIN_TOKEN_FILE: not set/);
});

t.test('ls --activator-url sends the token (--token-file, SWARM_ACTIVATOR_TOKEN_FILE, SWARM_ACTIVATOR_TOKEN)', async (t) => {
  const { app } = await adminApp(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const swarm = Object.assign(new FakeSwarm(), { listServices: async () => [...swarm.services.values()] });
  swarm.add('web', 1, { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.example.com', [LABELS.port]: '80' });
  const asSwarm = swarm as unknown as SwarmClient;

  const withToken = await listApps(asSwarm, { activatorUrl: url, token: READ });
  t.equal(withToken.activator, 'ok', 'a read-only token is enough for ls');
  const without = await listApps(asSwarm, { activatorUrl: url });
  t.equal(without.activator, 'unreachable');
  t.match(without.warnings[0], /HTTP 401: no token given: pass --token-file/);
  const wrong = await listApps(asSwarm, { activatorUrl: url, token: newToken() });
  t.match(wrong.warnings[0], /HTTP 401: the activator refused the token/);

  const file = tokenFile(READ).path;
  t.equal(adminTokenFrom({ tokenFile: file }, {}), READ, '--token-file');
  t.equal(adminTokenFrom({}, { SWARM_ACTIVATOR_TOKEN_FILE: file, SWARM_ACTIVATOR_TOKEN: 'other' }), READ, 'the file variable before the value');
  t.equal(adminTokenFrom({}, { SWARM_ACTIVATOR_TOKEN: ` ${READ} ` }), READ, 'the value, trimmed');
  t.equal(adminTokenFrom({}, {}), undefined);
  t.throws(() => adminTokenFrom({ tokenFile: '/nonexistent' }, {}), { message: /^--token-file: cannot read \/nonexistent: ENOENT/ });
  t.throws(() => adminTokenFrom({}, { SWARM_ACTIVATOR_TOKEN_FILE: tokenFile(' ').path }), { message: /^SWARM_ACTIVATOR_TOKEN_FILE: .* is empty/ });
});

t.test('a store that does not answer: 503 for sessions, Bearer tokens still work', async (t) => {
  const broken = new MemoryStore();
  const down = async () => {
    throw new Error('redis get session failed: Connection is closed.');
  };
  Object.assign(broken, { getSession: down, putSession: down });
  const { app } = await adminApp(t, { store: broken });
  const login = await app.inject({ method: 'POST', url: '/login', payload: { token: OPERATE } });
  t.equal(login.statusCode, 503);
  t.equal(login.json<{ error: string }>().error, 'SA_STORE_UNAVAILABLE');
  t.equal(login.headers['retry-after'], '5');
  t.equal((await app.inject({ url: '/api/apps', headers: { cookie: 'sa_session=abc' } })).statusCode, 503);
  t.equal((await app.inject({ url: '/api/apps', headers: bearer(READ) })).statusCode, 200);
});
