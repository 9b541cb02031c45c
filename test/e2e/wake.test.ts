/**
 * The wake path end to end on the real swarm: the activator runs as a Swarm service (as in
 * production) and requests arrive as Traefik would send them (Host + X-Forwarded-*).
 */
import t from 'tap';
import WebSocket from 'ws';
import { send } from '../helpers/http.js';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { createApp, docker, recordServiceEvents, runId, serviceState, waitFor, assertTestPostArrived, type SampleAppEcho } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('wake');
let activator: RunningActivator;

t.before(async () => {
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_MAX_BODY: '64kb', ACTIVATOR_WAKE_TIMEOUT: '30s' } });
});
t.teardown(async () => {
  if (t.passing()) return activator?.stop();
  t.comment(await activator?.logs());
  await activator?.stop();
});

const traefikHeaders = (host: string) => ({
  host,
  'x-forwarded-for': '203.0.113.7',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': host,
  'x-forwarded-port': '443',
  'x-real-ip': '203.0.113.7',
});

t.test('a cold POST wakes the app and arrives with body, query and headers intact', async (t) => {
  const app = await createApp({ name: `${run}-post`, run });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const before = await serviceState(app.name);
  t.equal(before.replicas, 0, 'starts asleep');

  const body = JSON.stringify({ hello: 'wörld', n: [1, 2, 3] });
  const res = await send(`${activator.url}/submit/form?a=1&b=two`, {
    method: 'POST',
    headers: { ...traefikHeaders(app.host), 'content-type': 'application/json; charset=utf-8', 'x-custom': 'kept', cookie: 'sid=abc' },
    body,
  });
  t.equal(res.status, 200);
  t.equal(res.header('x-activator-cold-start'), 'true', 'marked as a cold start');
  const echo = res.json<SampleAppEcho>();
  assertTestPostArrived(t, echo, body);
  t.equal(echo.headers.host, app.host, 'Host is the public host, not the task address');
  t.equal(echo.headers['x-forwarded-for'], '203.0.113.7', 'X-Forwarded-For as Traefik sent it');
  t.equal(echo.headers['x-forwarded-proto'], 'https');
  t.equal(echo.headers['x-forwarded-host'], app.host);

  const after = await serviceState(app.name);
  t.equal(after.replicas, 1, 'scaled to 1');
  t.equal(after.labels[LABELS.stateReason]?.startsWith('woken: request for'), true, 'wake reason recorded in labels');

  // Awake now: the fast path answers without touching Docker.
  const callsBefore = await activator.metric('activator_docker_api_calls_total');
  for (let i = 0; i < 20; i++) {
    const r = await send(`${activator.url}/again?i=${i}`, { headers: traefikHeaders(app.host) });
    t.equal(r.status, 200);
    t.equal(r.header('x-activator-cold-start'), undefined, 'hot requests are not marked cold');
      }
  const callsAfter = await activator.metric('activator_docker_api_calls_total');
  t.equal(callsAfter, callsBefore, 'no Docker call on the fast path');
});

t.test('200 concurrent requests to a sleeping app: one scale-up, 200 answers', async (t) => {
  const app = await createApp({ name: `${run}-burst`, run });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const events = await recordServiceEvents(app.name);
  const results = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const res = await send(`${activator.url}/item/${i}?i=${i}`, { headers: traefikHeaders(app.host) });
      const echo = res.json<SampleAppEcho>();
      return { status: res.status, path: echo.path, i: Number(echo.query.i) };
    }),
  );
  t.equal(results.filter((r) => r.status === 200).length, 200, 'all 200 answered with 200');
  t.ok(results.every((r) => r.path === `/item/${r.i}`), 'each answer is for its own request');
  const after = await serviceState(app.name);
  t.equal(after.replicas, 1);
  await waitFor('the scale-up event', async () => events.scaleUps() >= 1, 5000, 20);
  await new Promise((r) => setTimeout(r, 300)); // let any second (wrong) scale event arrive
  events.stop();
  t.equal(events.scaleUps(), 1, 'exactly one scale-up, counted from Docker service events');
  t.equal(events.updates.filter((u) => u.action === 'update').length, 1, 'and no other update');
  t.equal(await activator.metric('activator_wakes_total', { app: app.name }), 1, 'one wake counted');
});

t.test('never-healthy: 504 for every held request, and the service is back at 0', async (t) => {
  const app = await createApp({ name: `${run}-never`, run, image: 'sa/never-healthy:dev', labels: { [LABELS.wakeTimeout]: '4s', [LABELS.ready]: 'healthy' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const res = await send(`${activator.url}/`, { headers: traefikHeaders(app.host) });
      return { status: res.status, code: res.header('x-activator-error'), body: res.json<{ message: string }>() };
    }),
  );
  const elapsed = Date.now() - started;
  t.ok(results.every((r) => r.status === 504 && r.code === 'SA_WAKE_TIMEOUT'), 'all held requests got 504');
  t.match(results[0]?.body.message, /not ready within 4000 ms/, 'message says what happened');
  t.ok(elapsed >= 3900 && elapsed < 15_000, `answered after the wake timeout (${elapsed} ms)`);
  const state = await serviceState(app.name);
  t.equal(state.replicas, 0, 'scaled back to 0');
  t.match(state.labels[LABELS.stateReason], /wake failed: SA_WAKE_TIMEOUT/);
});

t.test('crash on start: 502, not a hang; the Swarm task error in the log, not in the answer', async (t) => {
  const app = await createApp({ name: `${run}-crash`, run, image: 'sa/crash-on-start:dev' });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const started = Date.now();
  const res = await send(`${activator.url}/`, { headers: { ...traefikHeaders(app.host), accept: 'application/json' } });
  const body = res.json<{ error: string; message: string }>();
  t.equal(res.status, 502);
  t.equal(body.error, 'SA_APP_FAILED');
  t.match(body.message, /failed to start/, 'says what happened');
  t.notMatch(body.message, /exit|task [0-9a-z]{12}/, 'without Swarm internals');
  // Docker's log of the service can lag the answer by a moment: wait for the line.
  const logged = await waitFor('the SA_APP_FAILED log line', async () => (await activator.logLines()).some((l) => l.code === 'SA_APP_FAILED' && /non-zero exit \(3\)/.test(String(l.detail))), 10_000, 200).catch(() => false);
  t.ok(logged, 'the log line names the task error');
  t.ok(Date.now() - started < 15_000, 'fails fast, well before the wake timeout');
  await waitFor('scale back to 0', async () => (await serviceState(app.name)).replicas === 0, 10_000);
});

t.test('a crashing app is not woken again on every request: its failure is answered at once until a redeploy or the backoff ends', async (t) => {
  const app = await createApp({ name: `${run}-backoff`, run, image: 'sa/crash-on-start:dev' });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const first = await send(`${activator.url}/`, { headers: traefikHeaders(app.host) });
  t.equal(first.status, 502, 'the failed wake');
  await waitFor('scale back to 0', async () => (await serviceState(app.name)).replicas === 0, 10_000);

  const events = await recordServiceEvents(app.name);
  t.teardown(() => events.stop());
  const again = await send(`${activator.url}/`, { headers: traefikHeaders(app.host) });
  t.equal(again.status, 502, 'the same failure');
  t.equal(again.header('x-activator-error'), 'SA_APP_FAILED');
  t.match(again.json<{ message: string }>().message, /failed to start .*\(\d+ s ago; the next wake is tried in \d+ s\)/);
  t.match(again.header('retry-after'), /^\d+$/, 'with Retry-After');
  const listed = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; wakeFailure: { code: string; failuresInARow: number; retryAt: string } | null }>;
  const mine = listed.find((a) => a.service === app.name);
  t.equal(mine?.wakeFailure?.code, 'SA_APP_FAILED', 'ops see the failure in /api/apps');
  t.equal(mine?.wakeFailure?.failuresInARow, 1);
  t.equal(events.scaleUps(), 0, 'no scale-up while backing off');

  // The fix is deployed: a new image in the task template ends the backoff at once.
  const svc = (await docker.getService(app.name).inspect()) as { Version: { Index: number }; Spec: { TaskTemplate: { ContainerSpec: Record<string, unknown> } } & Record<string, unknown> };
  const spec = { ...svc.Spec, TaskTemplate: { ...svc.Spec.TaskTemplate, ContainerSpec: { ...svc.Spec.TaskTemplate.ContainerSpec, Image: 'sa/sample-app:dev' } } };
  await docker.getService(app.name).update({ _query: { version: svc.Version.Index }, _body: spec });
  const fixed = await waitFor('the redeploy seen and the app woken', async () => {
    const r = await send(`${activator.url}/fixed`, { headers: traefikHeaders(app.host) });
    return r.status === 200 ? r : undefined;
  }, 30_000, 200);
  t.equal(fixed.json<SampleAppEcho>().path, '/fixed', 'served by the fixed app');
  t.equal(events.scaleUps(), 1, 'one scale-up, for the fixed app');
});

t.test('missing image: 502, the error in the log', async (t) => {
  const app = await createApp({ name: `${run}-noimg`, run, image: 'sa/does-not-exist:dev' });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const res = await send(`${activator.url}/`, { headers: traefikHeaders(app.host) });
  const body = res.json<{ error: string; message: string }>();
  t.equal(res.status, 502);
  t.match(body.message, /failed to start/);
  t.notMatch(body.message, /No such image|does-not-exist/i, 'the image name stays in the log');
  // Docker's log of the service can lag the answer by a moment: wait for the line.
  const logged = await waitFor('the SA_APP_FAILED log line', async () => (await activator.logLines()).some((l) => l.code === 'SA_APP_FAILED' && l.app === app.name && /No such image|does-not-exist/i.test(String(l.detail))), 10_000, 200).catch(() => false);
  t.ok(logged, 'the log line names the error');
});

t.test('unknown host: 404 and no Docker call', async (t) => {
  const calls = await activator.metric('activator_docker_api_calls_total');
  for (let i = 0; i < 50; i++) {
    const res = await send(`${activator.url}/x`, { headers: traefikHeaders(`nobody-${i}.example.com`) });
    t.equal(res.status, 404);
    t.equal(res.header('x-activator-error'), 'SA_UNKNOWN_HOST');
      }
  const html = await send(`${activator.url}/`, { headers: { host: 'nobody.example.com', accept: 'text/html' } });
  t.equal(html.status, 404);
  t.match(html.text(), /<h1>404 Unknown host<\/h1>/, 'browsers get a page');
  t.equal(await activator.metric('activator_docker_api_calls_total'), calls, 'Docker was not called');
});

t.test('oversized body: 413, the app is not woken and gets nothing', async (t) => {
  const app = await createApp({ name: `${run}-big`, run });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const res = await send(`${activator.url}/upload`, { method: 'POST', headers: { ...traefikHeaders(app.host), 'content-type': 'application/octet-stream' }, body: Buffer.alloc(100 * 1024, 1) });
  t.equal(res.status, 413);
  t.equal(res.header('x-activator-error'), 'SA_BODY_TOO_LARGE');
  t.equal((await serviceState(app.name)).replicas, 0, 'still asleep');
});

t.test('a WebSocket through the activator wakes the app and echoes', async (t) => {
  const app = await createApp({ name: `${run}-ws`, run });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const ws = new WebSocket(`ws://127.0.0.1:${activator.port}/chat?room=1`, { headers: { host: app.host } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  const replies: string[] = [];
  ws.on('message', (data) => replies.push((data as Buffer).toString()));
  for (const msg of ['one', 'two', 'three']) ws.send(msg);
  await waitFor('3 echoes', async () => replies.length === 3, 5000, 20);
  t.same(replies, ['one', 'two', 'three']);
  t.equal(await activator.metric('activator_in_flight', { app: app.name }), 1, 'the open socket counts as activity');
  ws.close();
  await waitFor('socket closed', async () => (await activator.metric('activator_in_flight', { app: app.name })) === 0, 5000, 50);
});

t.test('a client that leaves while held frees its slot', async (t) => {
  // No HEALTHCHECK: the image's (1 s × 3 retries, no start period) races the 3 s startup and can kill the task.
  const app = await createApp({ name: `${run}-leave`, run, env: { STARTUP_DELAY_MS: '3000' }, healthIntervalMs: 0 });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const controllers = Array.from({ length: 3 }, () => new AbortController());
  const pending = controllers.map((c) => send(`${activator.url}/`, { headers: traefikHeaders(app.host), signal: c.signal }).catch((e: Error) => e));
  await waitFor('3 held', async () => (await activator.metric('activator_held_requests', { app: app.name })) === 3, 5000, 20);
  for (const c of controllers) c.abort();
  await Promise.all(pending);
  await waitFor('slots freed', async () => (await activator.metric('activator_held_requests', { app: app.name })) === 0, 5000, 20);
  t.pass('held gauge back to 0 after the clients left');
  // The wake itself carries on and a later request is served.
  const res = await send(`${activator.url}/`, { headers: traefikHeaders(app.host) });
  t.equal(res.status, 200);
});
