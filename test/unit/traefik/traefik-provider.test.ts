/**
 * The provider's endpoint and its configuration keys, in-process (fastify inject, fake registry
 * and swarm). Traefik itself polls it in test/e2e/traefik-provider.test.ts.
 */
import Fastify from 'fastify';
import pino from 'pino';
import t from 'tap';
import { AdminToken, ConfigError, loadConfig } from '../../../src/config.js';
import type { AppRegistry } from '../../../src/discovery/app-registry.js';
import { Metrics } from '../../../src/metrics.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { ServiceInfo } from '../../../src/swarm/swarm.js';
import { PROVIDER_PATH, registerProviderRoute, TraefikProvider } from '../../../src/traefik/provider.js';
import { adminTokenEnv, newToken, tokenFile } from '../../helpers/admin-tokens.js';
import { FakeRegistry, entry } from '../../helpers/idle-fakes.js';

const TOKEN = newToken();

async function rig(t: { teardown(fn: () => unknown): void }, token: string | null = TOKEN) {
  const app = entry('shop', { replicas: 0 });
  app.labels = {
    'traefik.http.routers.shop.rule': 'Host(`shop.example.com`)',
    'traefik.http.routers.shop.middlewares': 'shop-auth,shared@swarm',
    'traefik.http.middlewares.shop-auth.basicauth.users': 'ops:{SHA}x=',
  };
  const registry = new FakeRegistry([app]);
  const traefikService = { id: 't', name: 'traefik', version: 1, replicas: 1, labels: { 'traefik.http.middlewares.shared.headers.customrequestheaders.X-A': '1' } } as unknown as ServiceInfo;
  const metrics = new Metrics({ defaultMetrics: false });
  const provider = new TraefikProvider({
    registry: registry as unknown as AppRegistry,
    swarm: { listServices: async () => [traefikService] },
    metrics,
    log: pino({ level: 'silent' }),
    token: token === null ? undefined : new AdminToken(token, 'ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE'),
    activatorService: 'swarm-activator@swarm',
    catalogRefreshMs: 60_000,
    store: new MemoryStore(),
    swarmRefreshMs: 5000, handoffTimeoutMs: 1000,
  });
  await provider.start();
  const admin = Fastify();
  registerProviderRoute(admin, provider);
  t.teardown(async () => {
    provider.stop();
    await admin.close();
  });
  return { admin, provider, registry, metrics, app };
}

t.test('401 without the token or with a wrong one; 200 and the same bytes with it', async (t) => {
  const { admin, metrics } = await rig(t);
  t.equal((await admin.inject({ url: PROVIDER_PATH })).statusCode, 401);
  t.equal((await admin.inject({ url: PROVIDER_PATH, headers: { 'x-activator-provider-token': `${TOKEN}x` } })).statusCode, 401);
  t.equal((await admin.inject({ url: PROVIDER_PATH, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 401, 'only in its own header');
  const a = await admin.inject({ url: PROVIDER_PATH, headers: { 'x-activator-provider-token': TOKEN } });
  const b = await admin.inject({ url: PROVIDER_PATH, headers: { 'x-activator-provider-token': TOKEN } });
  t.equal(a.statusCode, 200);
  t.equal(a.body, b.body, 'the same bytes');
  const body = JSON.parse(a.body) as { http: { routers: Record<string, { middlewares: string[] }> } };
  t.same(body.http.routers['sa-shop-shop']?.middlewares, ['sa-shop-route-marker', 'sa-shop-shop-auth', 'shared@swarm']);
  t.match(await metrics.registry.getSingleMetricAsString('activator_traefik_provider_fetches_total'), /instance="127\.0\.0\.1"} 2/, 'two fetches from one instance');
});

t.test('the guard: protected app, shared middleware types from other services', async (t) => {
  const { provider, app, registry } = await rig(t);
  const marker = provider.expectedMarker('shop') as string;
  t.equal(provider.guard(app, { host: 'shop.example.com', 'x-activator-route': marker }), undefined, 'through our router');
  t.match(provider.guard(app, { host: 'shop.example.com' }), { code: 'SA_ROUTE_REQUIRED', detail: /router shop: middleware shop-auth@swarm \(basicAuth\)/ });
  t.match(provider.guard(app, { host: 'shop.example.com:1:2', 'x-activator-route': marker }), { code: 'SA_BAD_REQUEST' });
  const open = { ...app, version: app.version + 1, labels: { 'traefik.http.routers.shop.rule': 'Host(`shop.example.com`)', 'traefik.http.routers.shop.middlewares': 'shared@swarm' } };
  t.equal(provider.guard(open, { host: 'shop.example.com' }), undefined, "a headers middleware on Traefik's service does not count");
  t.match(provider.viewOf(app), { provider: 'on', ownRouterRequired: { router: 'shop', reason: /basicAuth/ }, problems: [], handoff: false }, 'in /api/apps');
  const broken = { ...app, version: app.version + 2, labels: { ...app.labels, 'traefik.http.routers.shop.middlewares': 'shop-auth,nothere' } };
  registry.set(broken);
  t.match(provider.viewOf(broken).problems, [/nothere@swarm is defined on no service's labels/], 'a reference that cannot be carried over is reported');
});

t.test('without a token: no configuration, and protected apps always refused', async (t) => {
  const { admin, provider, app } = await rig(t, null);
  t.equal((await admin.inject({ url: PROVIDER_PATH, headers: { 'x-activator-provider-token': TOKEN } })).statusCode, 401);
  t.match(provider.guard(app, { host: 'shop.example.com', 'x-activator-route': 'anything' }), { code: 'SA_ROUTE_REQUIRED', detail: /provider is off/ });
});

t.test('configuration keys', async (t) => {
  const base = adminTokenEnv();
  const c = loadConfig({ ...base, ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE: tokenFile(TOKEN).path, ACTIVATOR_TRAEFIK_HANDOFF_TIMEOUT: '20s' });
  t.equal(c.traefikProviderToken?.reveal(), TOKEN);
  t.equal(c.traefikActivatorService, 'swarm-activator@swarm');
  t.equal(c.traefikHandoffTimeoutMs, 20_000);
  t.equal(loadConfig(base).traefikProviderToken, undefined, 'off by default');
  const bad: Array<[Record<string, string>, string]> = [
    [{ ACTIVATOR_TRAEFIK_SERVICE: 'no-provider' }, 'ACTIVATOR_TRAEFIK_SERVICE'],
    [{ ACTIVATOR_TRAEFIK_HANDOFF_TIMEOUT: 'soon' }, 'ACTIVATOR_TRAEFIK_HANDOFF_TIMEOUT'],
    [{ ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE: '/nonexistent/token' }, 'ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE'],
    [{ ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE: tokenFile('short').path }, 'ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE'],
  ];
  for (const [env, key] of bad) {
    const err = (() => {
      try {
        loadConfig({ ...base, ...env });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.ok(err instanceof ConfigError && err.key === key, `${JSON.stringify(env)} names ${key}`);
  }
  const twin = tokenFile(TOKEN);
  try {
    loadConfig({ ACTIVATOR_ADMIN_TOKEN_FILE: twin.path, ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE: tokenFile(TOKEN).path });
    t.fail('the same token twice');
  } catch (err) {
    t.match((err as ConfigError).key, 'ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE', 'not the same as an admin token');
  }
});
