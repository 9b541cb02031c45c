/**
 * The activator's Traefik provider through the real Traefik (stack/traefik.yml polls the
 * activator's /traefik/dynamic-config): the endpoint's token, the same bytes on every fetch,
 * fetches counted per Traefik instance, and every middleware type of the tests decoded by Traefik
 * from our body exactly as from the app's labels (Traefik's own API shows both side by side).
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { startRig, seedLabels, type EdgeRig } from '../helpers/traefik.js';
import { createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';
import { normaliseName } from '../../src/traefik-rule.js';

const run = runId('tfp');
t.setTimeout(15 * 60_000);
const domain = `${run}.sa-test.example.com`;
let rig: EdgeRig;

t.before(async () => {
  rig = await startRig({ run });
});
t.teardown(async () => {
  if (!t.passing()) {
    const spec = (await rig?.on.docker.getService(rig.edge.service).inspect().catch(() => undefined)) as { Spec?: { TaskTemplate?: { ContainerSpec?: { Args?: string[] } } } } | undefined;
    t.comment(`Traefik's provider flags: ${JSON.stringify(spec?.Spec?.TaskTemplate?.ContainerSpec?.Args?.filter((a) => a.includes('providers.http')))}; the rig's token: ${rig?.providerToken}`);
    t.comment(await rig?.activator.logs());
    t.comment(await rig?.edge.logs());
  }
  await rig?.stop();
});

const endpoint = () => `${rig.activator.adminUrl}/traefik/dynamic-config`;
/** Our name for an app's router or middleware (src/traefik/dynamic-config.ts). */
const ours = (service: string, name: string) => `sa-${normaliseName(service)}-${normaliseName(name)}`.toLowerCase();

t.test('the endpoint: its token or 401; the same bytes every time; fetches per Traefik instance', async (t) => {
  t.equal((await fetch(endpoint())).status, 401, 'no token: 401');
  t.equal((await fetch(endpoint(), { headers: { 'x-activator-provider-token': 'not-the-token-at-all' } })).status, 401, 'a wrong token: 401');
  t.equal((await fetch(endpoint(), { headers: rig.activator.adminHeaders() })).status, 401, 'the operator token is not the provider token');
  const headers = { 'x-activator-provider-token': rig.providerToken };
  const first = await fetch(endpoint(), { headers });
  t.equal(first.status, 200, 'with the token: 200');
  t.match(first.headers.get('content-type'), /^application\/json/);
  const a = await first.text();
  const b = await (await fetch(endpoint(), { headers })).text();
  t.equal(a, b, 'the same body on every fetch (Traefik hashes it)');
  t.type(JSON.parse(a), 'object', 'a dynamic configuration');
  // Traefik polls every 2 s from its task address.
  const fetches = await waitFor("Traefik's polls counted", async () => {
    const n = await rig.activator.metric('activator_traefik_provider_fetches_total', { instance: rig.edge.taskIp });
    return n !== undefined && n >= 2 ? n : undefined;
  }, 30_000, 500);
  t.ok(fetches >= 2, `fetches by Traefik at ${rig.edge.taskIp}: ${fetches}`);
  const age = await rig.activator.metric('activator_traefik_provider_seconds_since_fetch', { instance: rig.edge.taskIp });
  t.ok(age !== undefined && age < 10, `seconds since its last fetch: ${age}`);
});

t.test('every middleware type: decoded by Traefik from our body as from the labels', async (t) => {
  const name = `${run}-mw`;
  const host = `mw.${domain}`;
  const sha = `{SHA}${createHash('sha1').update('secret').digest('base64')}`;
  // type label key → its option labels (as an app would write them)
  const middlewares: Record<string, Record<string, string>> = {
    basicauth: { users: `ops:${sha},dev:${sha}`, realm: 'sa-test', removeheader: 'true' },
    ipallowlist: { sourcerange: '192.0.2.0/24,198.51.100.7', 'ipstrategy.depth': '1' },
    headers: { 'customrequestheaders.X-Test': 'one', 'customresponseheaders.X-Served': 'yes', stsseconds: '31536000', accesscontrolallowmethods: 'GET,OPTIONS' },
    redirectregex: { regex: '^https://old\\.example\\.com/(.*)', replacement: 'https://new.example.com/${1}', permanent: 'true' },
    redirectscheme: { scheme: 'https', permanent: 'true', port: '443' },
    stripprefix: { prefixes: '/mw-stripprefix,/x' },
    forwardauth: { address: 'http://127.0.0.1:9/auth', trustforwardheader: 'true', authresponseheaders: 'X-User,X-Email' },
    ratelimit: { average: '100', burst: '200', period: '1s' },
    chain: { middlewares: `${name}-headers,${name}-stripprefix` },
  };
  const labels: Record<string, string> = { ...seedLabels(name, host), [LABELS.idleTimeout]: '10m' };
  for (const [type, fields] of Object.entries(middlewares)) {
    for (const [k, v] of Object.entries(fields)) labels[`traefik.http.middlewares.${name}-${type}.${type}.${k}`] = v;
    // A router per middleware: Traefik builds (and so checks) a middleware only when a router uses it.
    labels[`traefik.http.routers.${name}-${type}.rule`] = `Host(\`${host}\`) && PathPrefix(\`/mw-${type}\`)`;
    labels[`traefik.http.routers.${name}-${type}.entrypoints`] = 'https';
    labels[`traefik.http.routers.${name}-${type}.tls`] = 'true';
    labels[`traefik.http.routers.${name}-${type}.middlewares`] = `${name}-${type}`;
  }
  // Awake: Traefik then has the labels' own middlewares (@swarm) beside ours (@http).
  const app = await createApp({ name, run, on: rig.on, host, replicas: 1, labels });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);

  type ApiMiddleware = Record<string, unknown> & { status: string; type: string; error?: string[] };
  const config = (m: ApiMiddleware) => Object.fromEntries(Object.entries(m).filter(([k]) => !['status', 'usedBy', 'name', 'provider', 'type', 'error'].includes(k)));
  for (const type of Object.keys(middlewares)) {
    const [fromLabels, fromUs] = await waitFor(`${type}: both in Traefik's API`, async () => {
      const l = await rig.traefikApi<ApiMiddleware>(`/api/http/middlewares/${name}-${type}@swarm`);
      const o = await rig.traefikApi<ApiMiddleware>(`/api/http/middlewares/${ours(name, `${name}-${type}`)}@http`);
      return l.status === 200 && o.status === 200 ? [l.body, o.body] : undefined;
    }, 60_000, 500);
    t.equal(fromUs.status, 'enabled', `${type}: ours enabled${fromUs.error ? ` (${fromUs.error.join('; ')})` : ''}`);
    t.equal(fromUs.type, fromLabels.type, `${type}: the same type (${fromUs.type})`);
    const expected = config(fromLabels);
    // A chain's members: the app's own under our names (dynamic-config.ts), as the routers' are.
    if (type === 'chain') expected.chain = { middlewares: (fromLabels.chain as { middlewares: string[] }).middlewares.map((m) => ours(name, m.replace(/@swarm$/, ''))) };
    const got = config(fromUs);
    if (type === 'chain') got.chain = { middlewares: (fromUs.chain as { middlewares: string[] }).middlewares.map((m) => m.replace(/@http$/, '')) };
    t.same(got, expected, `${type}: decoded as from the labels: ${JSON.stringify(config(fromUs))}`);
  }

  type ApiRouter = { status: string; rule: string; priority?: number; service: string; entryPoints?: string[]; middlewares?: string[]; tls?: { certResolver?: string }; error?: string[] };
  for (const router of [`${name}-https`, `${name}-http`, `${name}-chain`]) {
    const { body: r, status } = await rig.traefikApi<ApiRouter>(`/api/http/routers/${ours(name, router)}@http`);
    t.equal(status, 200, `our router for ${router} is in Traefik`);
    const { body: theirs } = await rig.traefikApi<ApiRouter>(`/api/http/routers/${router}@swarm`);
    t.equal(r.status, 'enabled', `${router}: ours enabled${r.error ? ` (${r.error.join('; ')})` : ''}`);
    t.equal(r.rule, theirs.rule, `${router}: the same rule`);
    t.same(r.entryPoints, theirs.entryPoints, `${router}: the same entry points`);
    t.equal(r.service, 'swarm-activator@swarm', `${router}: to the activator`);
    t.equal(r.priority, (theirs.priority ?? 0) > 0 ? (theirs.priority as number) - 1 : theirs.rule.length - 1, `${router}: one below the app's router (${r.priority})`);
    t.same(r.tls?.certResolver, theirs.tls?.certResolver, `${router}: the same certificate resolver`);
    // The app's own middlewares under our names, the shared one kept (@swarm); the API may or may not qualify names.
    const expected = (theirs.middlewares ?? []).map((m) => m.replace(/@swarm$/, '')).map((m) => (m.startsWith(`${name}-`) ? ours(name, m) : `${m}@swarm`));
    t.same((r.middlewares ?? []).slice(1).map((m) => m.replace(/@http$/, '')), expected, `${router}: the same middlewares, ours re-published (${JSON.stringify(r.middlewares)})`);
  }
});

t.test('fail closed: a rule beyond Host, a router Traefik disabled; the marker never reaches the app', async (t) => {
  const base = (name: string, router: string, rule: string, middlewares?: string) => ({
    'traefik.enable': 'true',
    'traefik.swarm.network': 'traefik-public',
    [`traefik.http.services.${name}.loadbalancer.server.port`]: '80',
    [`traefik.http.routers.${router}.rule`]: rule,
    [`traefik.http.routers.${router}.entrypoints`]: 'https',
    [`traefik.http.routers.${router}.tls`]: 'true',
    ...(middlewares ? { [`traefik.http.routers.${router}.middlewares`]: middlewares } : {}),
  });
  const pathName = `${run}-path`;
  const pathHost = `path.${domain}`;
  const goneName = `${run}-gone`;
  const goneHost = `gone.${domain}`;
  const pathApp = await createApp({ name: pathName, run, on: rig.on, host: pathHost, labels: { ...base(pathName, `${pathName}-pub`, `Host(\`${pathHost}\`) && PathPrefix(\`/public\`)`), [LABELS.idleTimeout]: '10m' } });
  t.teardown(pathApp.remove);
  const goneApp = await createApp({ name: goneName, run, on: rig.on, host: goneHost, labels: base(goneName, `${goneName}-https`, `Host(\`${goneHost}\`)`, 'nothere@file') });
  t.teardown(goneApp.remove);
  await rig.activator.waitForApp(pathName);
  await rig.activator.waitForApp(goneName);
  await waitFor('our router for the /public rule in Traefik', async () => (await rig.traefikApi<{ status: string }>(`/api/http/routers/${ours(pathName, `${pathName}-pub`)}@http`)).body.status === 'enabled', 30_000, 500);

  // Host(a) && PathPrefix(/public): /private matches no router of the app's, so it falls to the catch-all.
  const priv = await rig.edge.request(pathHost, '/private', { insecure: true });
  t.equal(priv.status, 503, '/private: 503 (it did not come through the app\'s router)');
  t.equal(priv.header('x-activator-error'), 'SA_ROUTE_REQUIRED');
  t.ok(Number(priv.header('retry-after')) > 0, `with Retry-After (${priv.header('retry-after')})`);
  t.notMatch(priv.text(), /PathPrefix|-pub/, "the answer names neither the rule nor the router (they are for the log)");
  t.equal((await serviceState(pathName)).replicas, 0, '/private did not wake it');
  const pub = await rig.edge.request(pathHost, '/public/page', { insecure: true });
  t.equal(pub.status, 200, '/public: through our router, the app woke and answered');
  t.equal(rig.servedBy(pub), 'activator');
  const seen = pub.json<{ headers: Record<string, string> }>().headers;
  t.notOk(Object.keys(seen).some((h) => h.toLowerCase() === 'x-activator-route'), 'the app never sees the route marker');

  // A router that names a middleware nobody has: Traefik disables ours as it does the app's.
  const disabled = await waitFor('our router for the broken app, disabled by Traefik', async () => {
    const r = await rig.traefikApi<{ status: string; error?: string[] }>(`/api/http/routers/${ours(goneName, `${goneName}-https`)}@http`);
    return r.status === 200 && r.body.status === 'disabled' ? r.body : undefined;
  }, 30_000, 500);
  t.match(disabled.error?.join(' '), /nothere@file/, `Traefik says why: ${disabled.error?.join('; ')}`);
  const gone = await rig.edge.request(goneHost, '/', { insecure: true });
  t.equal(gone.status, 503, 'its requests fall to the catch-all: 503');
  t.equal(gone.header('x-activator-error'), 'SA_ROUTE_REQUIRED');

  const lines = await waitFor('the log lines naming router and reason', async () => {
    const all = (await rig.activator.logLines()).filter((l) => l.code === 'SA_ROUTE_REQUIRED');
    const p = all.find((l) => l.app === pathName);
    const g = all.find((l) => l.app === goneName);
    return p && g ? { p, g } : undefined;
  }, 15_000, 250);
  t.match(lines.p.detail, new RegExp(`router ${pathName}-pub: its rule matches more than the Host`), `logged: ${String(lines.p.detail)}`);
  t.match(lines.g.detail, new RegExp(`router ${goneName}-https: middleware nothere@file is not defined`), `logged: ${String(lines.g.detail)}`);
});

t.test('the catch-all is optional with the provider: without it Traefik answers unknown Hosts, and a new Host waits for the next fetch', async (t) => {
  // As an operator who chose to drop the catch-all routers from stack/traefik.yml: off Traefik's own labels.
  const service = rig.on.docker.getService(rig.edge.service);
  const info = (await service.inspect()) as { Version: { Index: number }; Spec: { Labels?: Record<string, string> } & Record<string, unknown> };
  const labels = Object.fromEntries(Object.entries(info.Spec.Labels ?? {}).filter(([k]) => !k.startsWith('traefik.http.routers.activator-fallback')));
  await service.update({ ...info.Spec, Labels: labels, version: info.Version.Index });
  await waitFor('the catch-all gone from Traefik', async () => (await rig.traefikApi(`/api/http/routers/activator-fallback-https@swarm`)).status === 404, 30_000, 500);
  const unknown = await rig.edge.request(`nobody-${run}.invalid`, '/', { insecure: true });
  t.equal(unknown.status, 404, 'an unknown Host: 404');
  t.equal(unknown.header('x-activator-error'), undefined, 'from Traefik itself: the activator never saw it');

  const name = `${run}-new`;
  const host = `new.${domain}`;
  const deployedAt = Date.now();
  const app = await createApp({ name, run, on: rig.on, host, labels: seedLabels(name, host) });
  t.teardown(app.remove);
  const statuses = new Set<number>();
  const first = await waitFor('the new Host routed to the activator', async () => {
    const r = await rig.edge.request(host, '/', { insecure: true });
    statuses.add(r.status);
    return r.status === 200 ? r : undefined;
  }, 60_000, 250);
  const seconds = (Date.now() - deployedAt) / 1000;
  t.comment(`(6) without the catch-all: a Host deployed asleep answered ${seconds.toFixed(1)} s after the deploy (before that: ${[...statuses].filter((s) => s !== 200).join(', ') || 'nothing'})`);
  t.equal(rig.servedBy(first), 'activator', "woken through the activator's router for it");
  t.ok(seconds < 20, 'within discovery, a provider poll (2 s) and Traefik\'s throttle (2 s)');
});
