/**
 * Without the Traefik provider (issue 11, must-hold 7): no ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE,
 * so Traefik's polls of /traefik/dynamic-config get 404 and sleeping apps are reached through the
 * bare catch-all, as before. Everything works as it did, except that an app whose routers carry a
 * middleware that may refuse fails closed: 503 with Retry-After, never proxied around its auth.
 */
import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { seedLabels, startRig, type EdgeRig } from '../helpers/traefik.js';
import { createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';

const run = runId('tfn');
t.setTimeout(15 * 60_000);
const domain = `${run}.sa-test.example.com`;
let rig: EdgeRig;

t.before(async () => {
  rig = await startRig({ run, provider: false });
});
t.teardown(async () => {
  if (!t.passing()) {
    t.comment(await rig?.activator.logs());
    t.comment(await rig?.edge.logs());
  }
  await rig?.stop();
});

t.test('the start-up line says the provider is off; its endpoint does not exist', async (t) => {
  const line = (await rig.activator.logLines()).find((l) => l.traefikProvider !== undefined && typeof l.msg === 'string' && /Traefik provider/.test(l.msg));
  t.equal(line?.traefikProvider, 'off', `logged: ${String(line?.msg)}`);
  const res = await fetch(`${rig.activator.adminUrl}/traefik/dynamic-config`, { headers: { 'x-activator-provider-token': rig.providerToken } });
  t.not(res.status, 200, `no configuration is served (${res.status})`);
});

t.test("the seed's label set: asleep, woken through the catch-all, as before", async (t) => {
  const name = `${run}-seed`;
  const host = `seed.${domain}`;
  const app = await createApp({ name, run, on: rig.on, host, labels: seedLabels(name, host) });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  const res = await rig.edge.request(host, '/hello', { insecure: true });
  t.equal(res.status, 200, 'woken and answered (redirect and headers middlewares do not count as refusing)');
  t.equal(rig.servedBy(res), 'activator', 'through the catch-all and the activator');
});

t.test('an app behind basicAuth fails closed while Traefik has no router for it', async (t) => {
  const name = `${run}-auth`;
  const host = `auth.${domain}`;
  const password = randomBytes(6).toString('hex');
  const middleware = `${name}-auth`;
  const app = await createApp({
    name,
    run,
    on: rig.on,
    host,
    labels: { ...seedLabels(name, host, [middleware]), [`traefik.http.middlewares.${middleware}.basicauth.users`]: `ops:{SHA}${createHash('sha1').update(password).digest('base64')}` },
  });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  const credentials = { authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` };
  for (const headers of [{}, credentials]) {
    const res = await rig.edge.request(host, '/private', { insecure: true, headers });
    t.equal(res.status, 503, `${'authorization' in headers ? 'with' : 'without'} credentials: 503 (the activator cannot check them)`);
    t.equal(res.header('x-activator-error'), 'SA_ROUTE_REQUIRED');
    t.ok(Number(res.header('retry-after')) > 0, 'with Retry-After');
  }
  t.equal((await serviceState(name)).replicas, 0, 'never woken, never proxied');
  const line = await waitFor('the log line', async () => (await rig.activator.logLines()).find((l) => l.code === 'SA_ROUTE_REQUIRED' && l.app === name), 15_000, 250);
  t.match(line.detail, new RegExp(`router ${name}-https: middleware ${middleware}@swarm \\(basicAuth\\) may refuse a request.*provider is off`), `logged: ${String(line.detail)}`);
});
