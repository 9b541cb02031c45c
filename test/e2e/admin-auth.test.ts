/**
 * The admin API's authentication as production runs it: the activator image as a Swarm service
 * whose operator token is a Swarm secret (ACTIVATOR_ADMIN_TOKEN_FILE=/run/secrets/...).
 */
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';

const run = runId('auth');
let activator: RunningActivator;

t.before(async () => {
  activator = await startActivator({ name: `${run}-activator`, run });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

t.test('the token from the Swarm secret guards every admin route; health stays open', async (t) => {
  const app = await createApp({ name: `${run}-app`, run, replicas: 1 });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const open = await fetch(`${activator.adminUrl}/api/apps`);
  t.equal(open.status, 401, 'no token: 401');
  t.equal(open.headers.get('www-authenticate'), 'Bearer realm="swarm-activator"');
  t.match(await open.json(), { error: 'SA_UNAUTHORIZED', status: 401 });
  const sleepNoToken = await fetch(`${activator.adminUrl}/api/apps/${app.name}/sleep`, { method: 'POST' });
  t.equal(sleepNoToken.status, 401, 'the sleep that stopped a serving app without credentials is refused');
  t.equal((await serviceState(app.name)).replicas, 1, 'and the app keeps running');
  const wrong = await fetch(`${activator.adminUrl}/api/apps`, { headers: { authorization: 'Bearer not-the-token-at-all-0000' } });
  t.equal(wrong.status, 401);
  t.equal((await fetch(`${activator.adminUrl}/healthz`)).status, 200, '/healthz needs nothing');
  t.equal((await fetch(`${activator.adminUrl}/readyz`)).status, 200, '/readyz needs nothing');
  t.equal((await fetch(`${activator.adminUrl}/metrics`)).status, 200, '/metrics is public without a metrics token');

  const listed = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string }>;
  t.ok(listed.some((a) => a.service === app.name), 'with the token: the app list');
  const slept = await activator.adminFetch(`/api/apps/${app.name}/sleep`, { method: 'POST' });
  t.equal(slept.status, 200, 'the operator token puts it to sleep');
  await waitFor('scaled to 0', async () => (await serviceState(app.name)).replicas === 0, 10_000, 100);

  // A browser session: login, then a state change with and without a matching Origin.
  const login = await fetch(`${activator.adminUrl}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: activator.adminToken }) });
  t.equal(login.status, 200);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
  t.match(cookie, /^sa_session=/);
  const host = new URL(activator.adminUrl).host;
  const noOrigin = await fetch(`${activator.adminUrl}/api/apps/${app.name}/wake`, { method: 'POST', headers: { cookie } });
  t.equal(noOrigin.status, 403, 'cookie without Origin');
  const woke = await fetch(`${activator.adminUrl}/api/apps/${app.name}/wake`, { method: 'POST', headers: { cookie, origin: `http://${host}` } });
  t.equal(woke.status, 200, 'cookie with this Origin');

  const lines = await activator.logs();
  t.notOk(lines.includes(activator.adminToken), 'the token is in no log line');
});
