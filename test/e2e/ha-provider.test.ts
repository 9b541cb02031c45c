/**
 * Several activator replicas and the Traefik provider (issue 11, "Also"): two activators sharing
 * one Redis (a Swarm service, as in ha.test.ts) publish the same configuration, byte for byte, so
 * Traefik's hash of the body sees no change whichever replica it polls; and the handoff before a
 * scale-down is shared through the store: a sleep begun on one replica raises the priority in the
 * other's body too, and a fetch served by the other counts for the first one's wait.
 *
 * The test polls the endpoints itself, as Traefik's HTTP provider does (GET with the token header,
 * every 300 ms); the provider knows a Traefik instance by its address, so the test is one instance,
 * whichever replica it asks. Activator a starts before the apps exist (it learns them from Docker's
 * events), b after (from its first listing): the bodies must not depend on that either.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { send } from '../helpers/http.js';
import { redisService } from '../helpers/redis-service.js';
import { PROVIDER_TOKEN_PATH } from '../helpers/traefik.js';
import { createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';
import { normaliseName } from '../../src/traefik-rule.js';
import { MARKER_HEADER, markerValue } from '../../src/traefik/dynamic-config.js';

const run = runId('hap');
const redis = redisService(`${run}-redis`, { 'sa.run': `${run}-infra` });
const providerToken = randomBytes(24).toString('hex');
const env = {
  ACTIVATOR_REDIS_URL: redis.url,
  ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms',
  ACTIVATOR_MIN_AWAKE: '0',
  ACTIVATOR_WAKE_TIMEOUT: '30s',
  ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE: PROVIDER_TOKEN_PATH,
  ACTIVATOR_TRAEFIK_HANDOFF_TIMEOUT: '10s',
  // After a wake the priority drops back this + 3 s later (Traefik's swarm poll; no Traefik here).
  ACTIVATOR_TRAEFIK_SWARM_REFRESH: '2s',
};
const activator = (side: 'a' | 'b') => startActivator({ name: `${run}-${side}`, run, env, secrets: { 'activator-provider-token': providerToken } });
let a: RunningActivator;
let b: RunningActivator;

t.before(async () => {
  await redis.start();
  a = await activator('a');
});
t.teardown(async () => {
  if (!t.passing()) {
    t.comment(`activator a:\n${await a?.logs()}`);
    t.comment(`activator b:\n${await b?.logs()}`);
  }
  await Promise.all([a?.stop(), b?.stop()]);
  await redis.stop().catch(() => undefined);
});

/** One poll, as Traefik's HTTP provider makes it. */
async function poll(of: RunningActivator): Promise<string> {
  const res = await fetch(`${of.adminUrl}/traefik/dynamic-config`, { headers: { 'x-activator-provider-token': providerToken } });
  if (res.status !== 200) throw new Error(`${of.name}: the provider endpoint answered ${res.status}`);
  return res.text();
}

interface Body {
  http?: { routers?: Record<string, { rule: string; priority: number; middlewares: string[] }>; middlewares?: Record<string, unknown> };
}
const parse = (text: string) => JSON.parse(text) as Body;
/** Our name for an app's router or middleware (src/traefik/dynamic-config.ts). */
const ours = (service: string, name: string) => `sa-${normaliseName(service)}-${normaliseName(name)}`.toLowerCase();
const fetchesOf = async (of: RunningActivator) => (await of.metric('activator_traefik_provider_fetches_total')) ?? 0;

/** An app with Traefik labels: a router with a basicAuth and a headers middleware of its own, plus a second router. */
function traefikLabels(name: string, host: string): Record<string, string> {
  return {
    [`traefik.http.routers.${name}.rule`]: `Host(\`${host}\`)`,
    [`traefik.http.routers.${name}.entrypoints`]: 'https',
    [`traefik.http.routers.${name}.tls.certresolver`]: 'le',
    [`traefik.http.routers.${name}.middlewares`]: `${name}-auth,${name}-headers`,
    [`traefik.http.routers.${name}-api.rule`]: `Host(\`${host}\`) && PathPrefix(\`/api\`)`,
    [`traefik.http.routers.${name}-api.entrypoints`]: 'https',
    [`traefik.http.routers.${name}-api.middlewares`]: `${name}-headers`,
    [`traefik.http.middlewares.${name}-auth.basicauth.users`]: 'ops:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=',
    [`traefik.http.middlewares.${name}-headers.headers.customrequestheaders.X-From`]: name,
    [`traefik.http.services.${name}.loadbalancer.server.port`]: '80',
  };
}

t.test('two replicas: the same bytes for the same apps; a handoff begun on one shows on the other, and the other’s fetches count for it', async (t) => {
  // Created in an order that is not the sorted one, while only a runs.
  const apps: Array<{ name: string; host: string }> = [];
  for (const short of ['zulu', 'alpha', 'mike']) {
    const name = `${run}-${short}`;
    const host = `${short}.${run}.sa-test.example.com`;
    const app = await createApp({ name, run, host, replicas: short === 'mike' ? 1 : 0, labels: { ...traefikLabels(name, host), [LABELS.idleTimeout]: '10m' } });
    t.teardown(app.remove);
    apps.push({ name, host });
  }
  for (const app of apps) await a.waitForApp(app.name);
  b = await activator('b');
  for (const app of apps) await b.waitForApp(app.name);

  // --- the same bytes ---------------------------------------------------------------------------
  const fromA = await poll(a);
  const fromB = await poll(b);
  const routers = Object.keys(parse(fromA).http?.routers ?? {});
  for (const app of apps) t.ok(routers.includes(ours(app.name, app.name)) && routers.includes(ours(app.name, `${app.name}-api`)), `${app.name}: both routers published`);
  t.ok(Object.keys(parse(fromA).http?.middlewares ?? {}).includes(ours(apps[0]!.name, `${apps[0]!.name}-auth`)), 'with the apps’ own middlewares');
  t.equal(fromB, fromA, `b serves exactly a's body (${fromA.length} bytes, ${routers.length} routers)`);
  t.equal(await poll(a), fromA, 'and a the same again');

  // --- a handoff begun on a, with Traefik polling only b --------------------------------------
  const awake = apps.find((x) => x.name.endsWith('-mike'))!;
  const router = ours(awake.name, awake.name);
  const appPriority = `Host(\`${awake.host}\`)`.length;
  const seen: Array<{ at: number; priority: number | undefined; text: string }> = [];
  let polling = true;
  const poller = (async () => {
    for (let i = 0; polling && i < 400; i++) {
      const text = await poll(b);
      seen.push({ at: Date.now(), priority: parse(text).http?.routers?.[router]?.priority, text });
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  t.teardown(() => {
    polling = false;
  });
  await waitFor('a poll of b', async () => seen.length >= 2, 10_000, 50);
  t.equal(seen.at(-1)?.priority, appPriority - 1, `before: our router just below the app's (${appPriority - 1} < ${appPriority})`);

  const aFetchesBefore = await fetchesOf(a);
  const started = Date.now();
  const sleepRes = await a.adminFetch(`/api/apps/${awake.name}/sleep`, { method: 'POST' });
  const slept = (await sleepRes.json()) as { outcome?: string };
  const sleepMs = Date.now() - started;
  const aFetchesDuring = (await fetchesOf(a)) - aFetchesBefore;
  t.comment(`sleep through a: ${sleepRes.status} ${slept.outcome} after ${sleepMs} ms; fetches meanwhile: ${seen.filter((s) => s.at >= started).length} of b, ${aFetchesDuring} of a`);
  t.equal(slept.outcome, 'scaled-down', "a scaled it down: b's fetches counted for a's handoff");
  t.equal(aFetchesDuring, 0, 'nobody fetched from a meanwhile');
  t.equal((await serviceState(awake.name)).replicas, 0, 'asleep');
  const raisedSeen = seen.filter((s) => s.at >= started && s.priority === appPriority + 1);
  t.ok(raisedSeen.length > 0, `b's body had the raised priority ${appPriority + 1} during a's handoff (${raisedSeen.length} polls)`);
  const firstRaised = raisedSeen[0]?.at ?? 0;
  t.comment(`b published the raised priority ${firstRaised - started} ms after the sleep began on a`);

  // Asleep: the priority stays raised (until the next wake), on both replicas, the same bytes.
  const raisedA = await poll(a);
  t.equal(parse(raisedA).http?.routers?.[router]?.priority, appPriority + 1, "a's body: raised");
  t.equal(await poll(b), raisedA, 'b serves the same bytes as a');
  t.notSame(raisedA, fromA, 'and they are not the bytes from before');
  const metricReady = await a.metric('activator_traefik_handoffs_total', { outcome: 'ready' });
  t.equal(metricReady, 1, 'a counted one ready handoff');
  const viewB = (await (await b.adminFetch('/api/apps')).json()) as Array<{ service: string; traefik: { handoff: boolean } | null }>;
  t.equal(viewB.find((x) => x.service === awake.name)?.traefik?.handoff, true, "b's /api/apps shows the handoff a began");

  // --- a wake through b drops the priority back for both, swarm refresh + 3 s later ------------------------------------
  // As through the router of ours that Traefik would pick for it: with its marker header (the app has a basicAuth, so it must).
  const woke = await send(`${b.url}/after-sleep`, { headers: { host: awake.host, [MARKER_HEADER]: markerValue(providerToken, awake.name) } });
  t.equal(woke.status, 200, 'woken through b');
  const wokenAt = Date.now();
  await waitFor("a's body back to the app's own router first", async () => parse(await poll(a)).http?.routers?.[router]?.priority === appPriority - 1, 20_000, 200);
  const backAfter = Date.now() - wokenAt;
  t.comment(`a's body dropped the priority back ${backAfter} ms after the wake through b (swarm refresh 2 s + 3 s)`);
  t.ok(backAfter >= 4000, 'not before Traefik could have the new task (the release time b wrote to the store)');
  polling = false;
  await poller;
  t.equal(await poll(b), await poll(a), 'after the wake: the same bytes again');
  t.equal(await poll(a), fromA, 'and the same as before the sleep');
  const bodiesOfB = new Set(seen.map((s) => s.text));
  t.comment(`b served ${seen.length} polls with ${bodiesOfB.size} distinct bodies (before, raised, back)`);
  t.ok(bodiesOfB.size <= 3, 'no body but those three');
});
