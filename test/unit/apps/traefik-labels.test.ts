import t from 'tap';
import { MIDDLEWARE_TYPES, canonicalMiddlewareType, parseTraefikLabels } from '../../../src/apps/traefik-labels.js';
import { SEED_TRAEFIK_LABELS } from '../../helpers/seed-labels.js';

const seed = SEED_TRAEFIK_LABELS;

t.test('the seed label set: two routers, one with TLS from the le resolver', async (t) => {
  const { routers, middlewares, problems } = parseTraefikLabels(seed, 'vistacredit_web');
  t.same(routers, [
    {
      name: 'vistacredit-web-develop-http',
      rule: 'Host(`vista.doc.endevel.cz`)',
      priority: undefined,
      entryPoints: ['http'],
      tls: undefined,
      middlewares: ['non-www-redirect-secure'],
      service: undefined,
    },
    {
      name: 'vistacredit-web-develop-https',
      rule: 'Host(`vista.doc.endevel.cz`)',
      priority: undefined,
      entryPoints: ['https'],
      tls: { certResolver: 'le', options: undefined, domains: [] },
      middlewares: ['non-www-redirect-secure'],
      service: undefined,
    },
  ]);
  t.same(middlewares, [], 'the shared redirect is defined elsewhere');
  t.same(problems, []);
});

t.test('router names and keys match case-insensitively, the first spelling (in sorted order) kept', async (t) => {
  const { routers } = parseTraefikLabels(
    {
      'traefik.http.routers.Web.rule': 'Host(`a.example.com`)',
      'traefik.http.routers.web.tls': 'true',
      'traefik.http.routers.WEB.TLS.CertResolver': 'le',
      'traefik.http.routers.web.EntryPoints': 'http, https,,',
      'traefik.http.routers.web.Priority': '42',
      'traefik.http.routers.web.service': 'web-svc',
    },
    'svc',
  );
  t.equal(routers.length, 1, 'one router, however its name is spelled');
  t.same(routers[0], {
    name: 'WEB',
    rule: 'Host(`a.example.com`)',
    priority: 42,
    entryPoints: ['http', 'https'],
    tls: { certResolver: 'le', options: undefined, domains: [] },
    middlewares: [],
    service: 'web-svc',
  });
});

t.test('router lists, TLS domains and options', async (t) => {
  const { routers, problems } = parseTraefikLabels(
    {
      'traefik.http.routers.r.rule': 'Host(`a.example.com`) && PathPrefix(`/api`)',
      'traefik.http.routers.r.middlewares': 'auth, strip@file ,redirect@swarm',
      'traefik.http.routers.r.tls.options': 'modern@file',
      'traefik.http.routers.r.tls.domains[1].main': 'b.example.com',
      'traefik.http.routers.r.tls.domains[0].main': 'example.com',
      'traefik.http.routers.r.tls.domains[0].sans': '*.example.com, www.example.com',
      'traefik.http.routers.r.priority': 'high',
    },
    'svc',
  );
  const [r] = routers;
  t.same(r?.middlewares, ['auth', 'strip@file', 'redirect@swarm'], 'references kept as written, with their provider');
  t.same(r?.tls, {
    certResolver: undefined,
    options: 'modern@file',
    domains: [
      { main: 'example.com', sans: ['*.example.com', 'www.example.com'] },
      { main: 'b.example.com', sans: [] },
    ],
  }, 'domains ordered by their index, tls present without tls=true');
  t.equal(r?.priority, undefined, 'a bad priority is not guessed');
  t.same(problems, [{ label: 'traefik.http.routers.r.priority', message: '"high" is not a whole number' }]);
});

t.test('tls=false alone means no TLS; a router without a rule has an empty rule', async (t) => {
  const { routers } = parseTraefikLabels({ 'traefik.http.routers.r.tls': 'false', 'traefik.http.routers.r.entrypoints': 'http' }, 'svc');
  t.equal(routers[0]?.tls, undefined);
  t.equal(routers[0]?.rule, '');
});

t.test('middlewares: canonical type, options as a tree of the label strings', async (t) => {
  const { middlewares, problems } = parseTraefikLabels(
    {
      'traefik.http.middlewares.auth.basicauth.users': 'u:$apr1$x$y,v:$apr1$z$w',
      'traefik.http.middlewares.auth.BasicAuth.removeHeader': 'true',
      'traefik.http.middlewares.Allow.ipallowlist.sourcerange': '127.0.0.1/32, 10.0.0.0/8',
      'traefik.http.middlewares.Allow.ipallowlist.ipstrategy.depth': '1',
      'traefik.http.middlewares.hdr.headers.customrequestheaders.X-Env': 'preview',
      'traefik.http.middlewares.gz.compress': 'true',
      'traefik.http.middlewares.err.errors.status[0]': '500-599',
      'traefik.http.middlewares.odd.somethingNew.key': 'v',
      'traefik.http.routers.r.rule': 'Host(`a.example.com`)',
    },
    'app_web',
  );
  t.same(middlewares, [
    { name: 'Allow', type: 'ipAllowList', options: { sourcerange: '127.0.0.1/32, 10.0.0.0/8', ipstrategy: { depth: '1' } }, definedOn: 'app_web' },
    { name: 'auth', type: 'basicAuth', options: { removeHeader: 'true', users: 'u:$apr1$x$y,v:$apr1$z$w' }, definedOn: 'app_web' },
    { name: 'err', type: 'errors', options: { status: { '[0]': '500-599' } }, definedOn: 'app_web' },
    { name: 'gz', type: 'compress', options: {}, definedOn: 'app_web' },
    { name: 'hdr', type: 'headers', options: { customrequestheaders: { 'X-Env': 'preview' } }, definedOn: 'app_web' },
    { name: 'odd', type: 'somethingNew', options: { key: 'v' }, definedOn: 'app_web' },
  ]);
  t.same(problems, []);
});

t.test('a middleware with two types, or none, is reported', async (t) => {
  const { middlewares, problems } = parseTraefikLabels(
    {
      'traefik.http.middlewares.m.basicauth.users': 'u:p',
      'traefik.http.middlewares.m.stripprefix.prefixes': '/a',
      'traefik.http.middlewares.n': 'x',
    },
    'svc',
  );
  t.same(middlewares.map((m) => [m.name, m.type]), [['m', 'basicAuth']], 'the first type kept');
  t.same(problems.map((p) => p.label), ['traefik.http.middlewares.m', 'traefik.http.middlewares.n']);
});

t.test('other label roots and malformed keys', async (t) => {
  const { routers, problems } = parseTraefikLabels(
    {
      'traefik.enable': 'true',
      'traefik.tcp.routers.db.rule': 'HostSNI(`*`)',
      'swarm-activator.hosts': 'a.example.com',
      'traefik.http.routers..rule': 'Host(`x`)',
    },
    'svc',
  );
  t.same(routers, [], 'only traefik.http.* is decoded');
  t.same(problems.map((p) => p.label), ['traefik.http.routers..rule']);
});

t.test('canonical middleware types', async (t) => {
  t.equal(canonicalMiddlewareType('IPALLOWLIST'), 'ipAllowList');
  t.equal(canonicalMiddlewareType('passtlsclientcert'), 'passTLSClientCert');
  t.equal(canonicalMiddlewareType('nope'), undefined);
  t.equal(MIDDLEWARE_TYPES.length, 25);
  for (const type of MIDDLEWARE_TYPES) t.equal(canonicalMiddlewareType(type.toUpperCase()), type);
});
