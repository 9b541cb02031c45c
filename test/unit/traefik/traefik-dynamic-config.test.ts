/**
 * The provider's pure parts: labels → the dynamic configuration (src/traefik/dynamic-config.ts),
 * and the fail-closed decision (src/http/route-guard.ts). The real Traefik decodes the output in
 * test/e2e/traefik-provider.test.ts.
 */
import t from 'tap';
import { parseTraefikLabels } from '../../../src/apps/traefik-labels.js';
import type { TraefikMiddleware } from '../../../src/apps/model.js';
import { guardRequest, hostOnlyRule, malformedHost, routeRequirement } from '../../../src/http/route-guard.js';
import { buildDynamicConfig, markerValue, stableJson, type PublishedApp } from '../../../src/traefik/dynamic-config.js';
import { refusalReason } from '../../../src/traefik/middleware-kinds.js';

const appLabels = {
  'traefik.http.routers.shop-https.rule': 'Host(`shop.example.com`)',
  'traefik.http.routers.shop-https.entrypoints': 'https',
  'traefik.http.routers.shop-https.tls': 'true',
  'traefik.http.routers.shop-https.tls.certresolver': 'le',
  'traefik.http.routers.shop-https.tls.domains[0].main': 'shop.example.com',
  'traefik.http.routers.shop-https.tls.domains[0].sans': 'www.shop.example.com',
  'traefik.http.routers.shop-https.middlewares': 'shop-auth,non-www-redirect-secure@swarm,shop-chain,ext@file',
  'traefik.http.routers.shop-api.rule': 'Host(`shop.example.com`) && PathPrefix(`/api`)',
  'traefik.http.routers.shop-api.priority': '100',
  'traefik.http.routers.shop-api.middlewares': 'shared-headers',
  'traefik.http.middlewares.shop-auth.basicauth.users': 'ops:{SHA}abc=,dev:{SHA}def=',
  'traefik.http.middlewares.shop-chain.chain.middlewares': 'shop-strip,shared-headers',
  'traefik.http.middlewares.shop-strip.stripprefix.prefixes': '/a,/b',
};
const app = (service: string, labels: Record<string, string>): PublishedApp => {
  const parsed = parseTraefikLabels(labels, service);
  return { service, routers: parsed.routers, middlewares: parsed.middlewares };
};
const options = { activatorService: 'swarm-activator@swarm', markerHeader: 'X-Activator-Route', markerFor: (s: string) => markerValue('secret-token-of-the-test', s) };

t.test('every router of an app, with its rule, TLS and middlewares, pointing at the activator one priority below', async (t) => {
  const { config, problems } = buildDynamicConfig([app('shop', appLabels)], options);
  t.same(problems, []);
  const https = config.http?.routers?.['sa-shop-shop-https'];
  t.same(https, {
    rule: 'Host(`shop.example.com`)',
    priority: 'Host(`shop.example.com`)'.length - 1,
    service: 'swarm-activator@swarm',
    entryPoints: ['https'],
    // own middlewares under our names; elsewhere-defined ones kept, bare → @swarm
    middlewares: ['sa-shop-route-marker', 'sa-shop-shop-auth', 'non-www-redirect-secure@swarm', 'sa-shop-shop-chain', 'ext@file'],
    tls: { certResolver: 'le', domains: [{ main: 'shop.example.com', sans: ['www.shop.example.com'] }] },
  });
  t.equal(config.http?.routers?.['sa-shop-shop-api']?.priority, 99, 'an explicit priority, minus one');
  t.same(config.http?.routers?.['sa-shop-shop-api']?.middlewares, ['sa-shop-route-marker', 'shared-headers@swarm']);
  t.same(config.http?.middlewares?.['sa-shop-shop-auth'], { basicAuth: { users: 'ops:{SHA}abc=,dev:{SHA}def=' } }, 'label values as they are');
  t.same(config.http?.middlewares?.['sa-shop-shop-chain'], { chain: { middlewares: ['sa-shop-shop-strip', 'shared-headers@swarm'] } }, "a chain's members respelled as our routers see them");
  t.same(config.http?.middlewares?.['sa-shop-route-marker'], { headers: { customRequestHeaders: { 'X-Activator-Route': markerValue('secret-token-of-the-test', 'shop') } } });
  t.not(markerValue('secret-token-of-the-test', 'shop'), markerValue('secret-token-of-the-test', 'other'), 'a marker per app');
  t.not(markerValue('secret-token-of-the-test', 'shop'), markerValue('another-secret-token', 'shop'), 'and per secret');
});

t.test('no apps: no empty maps (Traefik refuses "middlewares": {})', async (t) => {
  t.equal(stableJson(buildDynamicConfig([], options).config), '{}');
});

t.test('the same apps give the same bytes, whatever their order (replicas agree)', async (t) => {
  const other = app('blog', { 'traefik.http.routers.blog.rule': 'Host(`blog.example.com`)', 'traefik.http.routers.blog.middlewares': 'shared-headers' });
  const a = stableJson(buildDynamicConfig([app('shop', appLabels), other], options).config);
  const b = stableJson(buildDynamicConfig([other, app('shop', Object.fromEntries(Object.entries(appLabels).reverse()))], options).config);
  t.equal(a, b);
});

t.test('a reference to a middleware no service defines is reported', async (t) => {
  const catalog = new Map<string, TraefikMiddleware>([['non-www-redirect-secure@swarm', { name: 'non-www-redirect-secure', type: 'redirectRegex', options: {}, definedOn: 'traefik' }]]);
  const { problems } = buildDynamicConfig([app('shop', appLabels)], { ...options, catalog: new Map([...catalog, ...app('shop', appLabels).middlewares.map((m) => [`${m.name}@swarm`, m] as const)]) });
  t.same(problems.map((p) => [p.router, p.middleware]), [['shop-api', 'shared-headers']], 'shared-headers is nowhere; ext@file cannot be checked and is kept');
});

t.test('which routers need their own path', async (t) => {
  const mw = (name: string, type: string, options: TraefikMiddleware['options'] = {}): [string, TraefikMiddleware] => [`${name}@swarm`, { name, type, options, definedOn: 'x' }];
  const catalog = new Map([mw('redirect', 'redirectRegex'), mw('hdr', 'headers'), mw('gzip', 'compress'), mw('auth', 'basicAuth'), mw('safe-chain', 'chain', { middlewares: 'hdr,gzip' }), mw('auth-chain', 'chain', { middlewares: 'hdr,auth' }), mw('loop', 'chain', { middlewares: 'loop' }), mw('odd', 'someplugin')]);
  t.equal(refusalReason('redirect', catalog), undefined, 'redirects do not count');
  t.equal(refusalReason('hdr@swarm', catalog), undefined, 'headers do not count');
  t.equal(refusalReason('safe-chain', catalog), undefined, 'a chain of those does not either');
  t.match(refusalReason('auth', catalog), /basicAuth/);
  t.match(refusalReason('auth-chain', catalog), /chain auth-chain@swarm: middleware auth@swarm \(basicAuth\)/, 'a chain counts as its members');
  t.match(refusalReason('loop', catalog), /loop/);
  t.match(refusalReason('odd', catalog), /someplugin/, 'an unknown type may refuse');
  t.match(refusalReason('missing', catalog), /not defined/, 'so does a middleware nobody defines');
  t.match(refusalReason('x@file', catalog), /not defined/, 'or one in another provider');
  const router = (rule: string, middlewares: string[] = []) => ({ name: 'r', rule, entryPoints: [], middlewares });
  t.equal(routeRequirement([router('Host(`a`) || Host(`b`)', ['redirect', 'hdr'])], catalog), undefined, "the seed's labels need no own path");
  t.match(routeRequirement([router('Host(`a`)', ['auth'])], catalog)?.reason, /basicAuth/);
  t.match(routeRequirement([router('Host(`a`) && PathPrefix(`/public`)')], catalog)?.reason, /more than the Host/, 'a rule beyond Host');
  t.ok(hostOnlyRule('Host(`a.example.com`)') && hostOnlyRule('(Host(`a`) || Host("b"))'));
  t.notOk(hostOnlyRule('HostRegexp(`.+`)') || hostOnlyRule('Host(`a`) && ClientIP(`10.0.0.0/8`)') || hostOnlyRule('!Host(`a`)') || hostOnlyRule('PathPrefix(`/`)'));
});

t.test('the decision for one request', async (t) => {
  const need = { router: 'shop-https', reason: 'middleware auth@swarm (basicAuth) may refuse a request' };
  t.same(guardRequest('shop.example.com', undefined, undefined, undefined), { allow: true }, 'nothing to protect: any path');
  t.same(guardRequest('shop.example.com', need, 'm1', 'm1'), { allow: true }, 'through our router');
  const refused = guardRequest('shop.example.com', need, undefined, 'm1');
  t.match(refused, { allow: false, status: 503, router: 'shop-https', reason: /basicAuth.*no route marker/ });
  t.match(guardRequest('shop.example.com', need, 'forged', 'm1'), { allow: false, status: 503, reason: /wrong route marker/ });
  t.match(guardRequest('shop.example.com', need, ['m1', 'm1'], 'm1'), { allow: false }, 'the marker twice is not the marker');
  t.match(guardRequest('shop.example.com', need, 'm1', undefined), { allow: false, reason: /provider is off/ }, 'without the provider a protected app is never proxied');
  t.match(guardRequest('shop.example.com:1:2', undefined, undefined, undefined), { allow: false, status: 400 }, 'a malformed port: 400, protected or not');
  t.ok(malformedHost('a:1:2') && malformedHost('a:x') && malformedHost('a:') && malformedHost('[::1]x'));
  t.notOk(malformedHost('a') || malformedHost('a:443') || malformedHost('[::1]:80') || malformedHost(undefined));
});

t.test('long-lived routers: WebSocket and event-stream routers above the app’s, per router; none for an app that turns them off', async (t) => {
  const blog = app('blog', { 'traefik.http.routers.blog.rule': 'Host(`blog.example.com`)', 'traefik.http.routers.blog.entrypoints': 'https' });
  const { config } = buildDynamicConfig([app('shop', appLabels), blog], { ...options, longLived: (s) => s !== 'blog' });
  const routers = config.http?.routers ?? {};
  const https = routers['sa-shop-shop-https'];
  const appPriority = 'Host(`shop.example.com`)'.length;
  t.same(routers['sa-shop-shop-https-ws'], { ...https, rule: '(Host(`shop.example.com`)) && HeaderRegexp(`Upgrade`, `(?i)^websocket$`)', priority: appPriority + 1 }, 'WebSocket upgrades: the same router, one above the app’s');
  t.same(routers['sa-shop-shop-https-sse'], { ...https, rule: '(Host(`shop.example.com`)) && HeaderRegexp(`Accept`, `(?i)text/event-stream`)', priority: appPriority + 1 }, 'event streams too');
  t.equal(routers['sa-shop-shop-api-sse']?.priority, 101, 'above an explicit priority as well');
  t.ok(routers['sa-blog-blog'], 'the app with long-lived off keeps its plain router');
  t.same(Object.keys(routers).filter((r) => r.startsWith('sa-blog-')), ['sa-blog-blog'], 'and has no other');
});
