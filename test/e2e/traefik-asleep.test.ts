/**
 * A sleeping app through the real Traefik (issue 9 measured these as known failures; issue 11's
 * provider fixes them). A sleeping app has no running task, so Traefik's swarm provider drops its
 * routers and the middlewares on its labels; the activator's routers (src/traefik/) keep them.
 * Each test prints its number.
 *   (a) TLS before the first visit   (b) middlewares in every state   (c) requests across a
 *   scale-down (the handoff)   (d) a silent WebSocket through Traefik   (e) a malformed Host port
 */
import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import type { Reply } from '../helpers/http.js';
import { seedLabels, startRig, type EdgeRig } from '../helpers/traefik.js';
import { createApp, runId, serviceState, waitAsleep, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('tfa');
// startRig may first wait for another file's Traefik rig on this swarm (one at a time).
t.setTimeout(15 * 60_000);
const domain = `${run}.sa-test.example.com`;
const MONITOR_UA = 'sa-asleep-monitor';
let rig: EdgeRig;

t.before(async () => {
  rig = await startRig({
    run,
    env: {
      ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms',
      ACTIVATOR_MIN_AWAKE: '0',
      ACTIVATOR_WAKE_TIMEOUT: '60s',
      ACTIVATOR_TRAEFIK_METRICS_INTERVAL: '500ms',
      // Earlier requests' bytes are old news within a second: (d) sees only the silent WebSocket.
      ACTIVATOR_NETWORK_STATS_INTERVAL: '1s',
      ACTIVATOR_MONITOR_USER_AGENTS: MONITOR_UA,
    },
  });
});
t.teardown(async () => {
  if (!t.passing()) {
    t.comment(await rig?.activator.logs());
    t.comment(await rig?.edge.logs());
  }
  await rig?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends until Traefik itself handles the host (its router exists): `done` says when. */
async function untilRouted(what: string, send: () => Promise<Reply>, done: (r: Reply) => boolean, timeoutMs = 30_000): Promise<{ reply: Reply; afterMs: number }> {
  const started = Date.now();
  const reply = await waitFor(what, async () => {
    const r = await send();
    return done(r) ? r : undefined;
  }, timeoutMs, 200);
  return { reply, afterMs: Date.now() - started };
}

t.test('(a) TLS before the first visit: an app deployed asleep gets its certificate from the resolver', async (t) => {
  const name = `${run}-tls`;
  const host = `tls.${domain}`;
  const deployedAt = Date.now();
  const app = await createApp({ name, run, on: rig.on, host, labels: seedLabels(name, host) });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  // No request to it: only TLS handshakes (which wake nothing), until one shows Pebble's certificate.
  // The activator's router for it carries the app's certResolver, so Traefik orders one at once.
  const cert = await rig.edge.waitForCertificate(host, 90_000);
  const seconds = (Date.now() - deployedAt) / 1000;
  t.comment(`(a) deployed asleep: a certificate from "${cert.issuer}" ${seconds.toFixed(1)} s after the deploy, before any visit`);
  t.match(cert.issuer, /Pebble/, "the le resolver's certificate (from Pebble)");
  t.equal((await serviceState(name)).replicas, 0, 'still asleep: nobody visited');
  // The first visit, by a client that trusts only Pebble's root and checks the name, as a browser does.
  const first = await rig.edge.request(host, '/first-visit');
  t.equal(first.status, 200, 'the first HTTPS visit validates and wakes the app');
  t.equal(rig.servedBy(first), 'activator', "through the activator's router for it");
});

t.test('(b) auth in every state: asleep, waking, awake, right after a sleep; a stranger cannot wake it', async (t) => {
  const password = randomBytes(6).toString('hex');
  const sha = `{SHA}${createHash('sha1').update(password).digest('base64')}`;
  const cases = [
    { kind: 'basicAuth', mw: 'auth', labels: { basicauth: { users: `ops:${sha}` } }, refused: 401, credentials: { authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` } },
    // 192.0.2.0/24 (TEST-NET-1) is nobody here: the test client is refused; the ops API wakes it.
    { kind: 'ipAllowList', mw: 'allow', labels: { ipallowlist: { sourcerange: '192.0.2.0/24' } }, refused: 403, credentials: undefined },
  ];
  await Promise.all(cases.map(async (c) => {
    const name = `${run}-${c.mw}`;
    const host = `${c.mw}.${domain}`;
    const middleware = `${name}-${c.mw}`;
    const [type, fields] = Object.entries(c.labels)[0] as [string, Record<string, string>];
    const labels: Record<string, string> = { ...seedLabels(name, host, [middleware]), [LABELS.idleTimeout]: '10m' };
    for (const [k, v] of Object.entries(fields)) labels[`traefik.http.middlewares.${middleware}.${type}.${k}`] = v;
    const app = await createApp({ name, run, on: rig.on, host, env: { STARTUP_DELAY_MS: '1500' }, labels });
    t.teardown(app.remove);
    await rig.activator.waitForApp(name);
    const stranger = (state: string) => rig.edge.request(host, `/private?kind=${c.kind}&state=${state}`, { insecure: true, timeoutMs: 10_000 });
    const seen: Record<string, number[]> = { asleep: [], waking: [], awake: [], 'after sleep': [] };

    // Asleep: until Traefik has fetched the activator's router for it, the activator itself refuses (503, fail closed).
    await waitFor(`${c.kind}: refused by its middleware while asleep`, async () => {
      const r = await stranger('asleep');
      seen.asleep!.push(r.status);
      return r.status === c.refused;
    }, 30_000, 250);
    for (let i = 0; i < 5; i++) seen.asleep!.push((await stranger('asleep')).status);
    await sleep(1500);
    t.equal((await serviceState(name)).replicas, 0, `${c.kind}: a stranger did not wake it`);

    // Waking: a wake by someone allowed (credentials through Traefik, or the ops API), a stranger meanwhile.
    const wake = c.credentials
      ? rig.edge.request(host, '/allowed', { insecure: true, headers: c.credentials })
      : rig.activator.adminFetch(`/api/apps/${name}/wake`, { method: 'POST' }).then((r) => ({ status: r.status }));
    await sleep(500);
    for (let i = 0; i < 3; i++) seen.waking!.push((await stranger('waking')).status);
    t.equal((await wake).status, 200, `${c.kind}: the allowed wake went through`);

    // Awake: once Traefik routes to the app's own router.
    await waitFor(`${c.kind}: the app's own router in Traefik`, async () => (await rig.traefikApi<{ status: string }>(`/api/http/routers/${name}-https@swarm`)).body.status === 'enabled', 30_000, 500);
    for (let i = 0; i < 3; i++) seen.awake!.push((await stranger('awake')).status);

    // Right after a sleep: the app's router may point at a gone task for a few seconds; ours takes over.
    t.equal((await rig.activator.adminFetch(`/api/apps/${name}/sleep`, { method: 'POST' })).status, 200, `${c.kind}: put to sleep`);
    const sleptAt = Date.now();
    while (Date.now() - sleptAt < 8000) {
      seen['after sleep']!.push((await stranger('after-sleep')).status);
      await sleep(250);
    }
    t.comment(`(b) ${c.kind}, requests without credentials / from a refused address: ${Object.entries(seen).map(([state, codes]) => `${state} ${summary(codes)}`).join('; ')}`);
    for (const [state, codes] of Object.entries(seen)) {
      const settled = state === 'asleep' ? codes.slice(codes.indexOf(c.refused)) : codes;
      t.same([...new Set(settled)], [c.refused], `${c.kind}: ${state}: every answer ${c.refused}`);
      t.notOk(codes.some((code) => code < 400), `${c.kind}: ${state}: never let through`);
    }
    t.equal((await serviceState(name)).replicas, 0, `${c.kind}: strangers did not wake it after the sleep either`);
  }));
});

/** [401, 401, 503] → "401×2, 503×1". */
function summary(codes: number[]): string {
  const counts = new Map<number, number>();
  for (const c of codes) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].map(([c, n]) => `${c}×${n}`).join(', ');
}

t.test('(c) one request every 50 ms through Traefik for 20 s around a scale-down', async (t) => {
  const name = `${run}-down`;
  const host = `down.${domain}`;
  const app = await createApp({ name, run, on: rig.on, host, replicas: 1, labels: { ...seedLabels(name, host), [LABELS.idleTimeout]: '10m' } });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  await untilRouted("Traefik's router for the awake app", () => rig.edge.request(host, '/', { insecure: true }), (r) => rig.servedBy(r) === 'traefik');

  const started = Date.now();
  const outcomes: Array<{ at: number; status: number | string; by: string }> = [];
  const client = (async () => {
    // One request every 50 ms (not overlapping: a slow one delays the next), 20 s in all.
    for (let i = 0; Date.now() - started < 20_000 && i < 400; i++) {
      const sentAt = Date.now();
      const next = sentAt + 50;
      try {
        const r = await rig.edge.request(host, `/tick?i=${i}`, { insecure: true, timeoutMs: 10_000 });
        outcomes.push({ at: sentAt - started, status: r.status, by: rig.servedBy(r) });
      } catch (err) {
        // UND_ERR_HEADERS_TIMEOUT: no answer within 10 s
        outcomes.push({ at: sentAt - started, status: (err as { code?: string }).code ?? (err as Error).message, by: 'none' });
      }
      await sleep(Math.max(0, next - Date.now()));
    }
  })();
  // The reaper's scale-down, at a known moment (the ops API runs the idle path with force).
  await sleep(5000);
  // With the handoff the sleep waits for Traefik's next fetch; a request open at the last check
  // calls it off (the service stays up): ask again, at most 3 times.
  let downAt = 0;
  for (let attempt = 0; attempt < 3 && !downAt; attempt++) {
    const sleepRes = await rig.activator.adminFetch(`/api/apps/${name}/sleep`, { method: 'POST' });
    const body = (await sleepRes.json()) as { outcome?: string };
    if (body.outcome === 'scaled-down') downAt = Date.now() - started;
    else t.comment(`(c) sleep attempt ${attempt + 1}: ${sleepRes.status} ${body.outcome}`);
  }
  t.ok(downAt > 0, 'scaled down by the activator');
  await client;
  const failures = outcomes.filter((o) => o.status !== 200);
  const statuses: Record<string, number> = {};
  for (const f of failures) statuses[String(f.status)] = (statuses[String(f.status)] ?? 0) + 1;
  const span = failures.length > 0 ? `, sent ${((failures[0]!.at - downAt) / 1000).toFixed(1)}…${((failures.at(-1)!.at - downAt) / 1000).toFixed(1)} s after the scale-down` : '';
  t.comment(`(c) ${outcomes.length} requests, ${failures.length} failed: ${JSON.stringify(statuses)}${span}; served by activator ${outcomes.filter((o) => o.by === 'activator').length}, by Traefik's router ${outcomes.filter((o) => o.by === 'traefik').length}`);
  t.ok(outcomes.length >= 100, `the client ran (${outcomes.length} requests)`);
  // The two-phase handoff: the activator's router outranks the app's before its task goes (must-hold 4).
  t.same(statuses, {}, 'no request failed across the scale-down');
  t.ok(outcomes.some((o, i) => o.by === 'activator' && outcomes.slice(i + 1).some((later) => later.by === 'activator')), 'the activator carried requests around the scale-down');
});

t.test('(d) a silent WebSocket through Traefik for 3 idle timeouts', async (t) => {
  const IDLE_MS = 3000;
  const name = `${run}-ws`;
  const host = `ws.${domain}`;
  // A long idle timeout while it gets its router and certificate; the short one once the WebSocket is open.
  const app = await createApp({ name, run, on: rig.on, host, replicas: 1, labels: { ...seedLabels(name, host), [LABELS.idleTimeout]: '10m' } });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  await untilRouted("Traefik's router for the awake app", () => rig.edge.request(host, '/', { insecure: true }), (r) => rig.servedBy(r) === 'traefik');
  // wss, with the certificate from Pebble; the activator's WebSocket router outranks the app's.
  await rig.edge.waitForCertificate(host, 60_000);
  // One request through Traefik right before: the idle timeout starts from activity the activator sees.
  const last = await rig.edge.request(host, '/last-request');
  t.equal(rig.servedBy(last), 'traefik', "the last request went through the app's router");
  const ws = await rig.edge.websocket(host, '/socket');
  const openedAt = Date.now();
  let closedAt = 0;
  ws.on('close', () => (closedAt ||= Date.now()));
  ws.on('error', () => undefined);
  t.teardown(() => ws.terminate());
  t.equal(await rig.activator.metric('activator_in_flight', { app: name }), 1, "the WebSocket goes through the activator's tunnel");
  const put = await rig.activator.adminFetch(`/api/apps/${name}/idle-timeout`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idleTimeout: `${IDLE_MS}ms` }) });
  t.equal(put.status, 200, `idle timeout now ${IDLE_MS} ms`);
  let downAt = 0;
  while (Date.now() - openedAt < 3 * IDLE_MS) {
    if (!downAt && (await serviceState(name)).replicas === 0) downAt = Date.now();
    await sleep(150);
  }
  const scaledDown = downAt > 0;
  const downAfter = scaledDown ? downAt - openedAt : undefined;
  t.comment(`(d) WebSocket open and silent through Traefik for ${3 * IDLE_MS} ms (idle timeout ${IDLE_MS} ms): scaled down under it: ${scaledDown}${downAfter !== undefined ? ` (${(downAfter / 1000).toFixed(1)} s after it opened)` : ''}; connection closed: ${closedAt ? `yes, ${((closedAt - openedAt) / 1000).toFixed(1)} s after it opened` : 'no'}`);
  // The activator's WebSocket router carries it (must-hold 5): its tunnel is activity while it is open.
  t.notOk(scaledDown, 'never scaled down while the WebSocket was open');
  t.equal(closedAt, 0, 'the connection stayed open');
  ws.close();
  const closed = Date.now();
  const asleepAt = await waitAsleep(name, 60_000);
  const after = asleepAt - closed;
  t.comment(`(d) asleep ${(after / 1000).toFixed(1)} s after the WebSocket closed (idle timeout ${IDLE_MS} ms, then the handoff)`);
  t.ok(after >= IDLE_MS - 600, 'not before one idle timeout after it closed');
  t.ok(after < IDLE_MS + 20_000, 'and soon after (the idle check, then the handoff to Traefik)');
});

t.test('(e) Host: <app host>:1:2 through Traefik: 400, the app never sees it', async (t) => {
  const name = `${run}-port`;
  const host = `port.${domain}`;
  const app = await createApp({ name, run, on: rig.on, host, replicas: 1, labels: { ...seedLabels(name, host), [LABELS.idleTimeout]: '10m' } });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  await untilRouted("Traefik's router for the awake app", () => rig.edge.request(host, '/', { insecure: true }), (r) => rig.servedBy(r) === 'traefik');

  const marker = randomBytes(4).toString('hex');
  const res = await rig.edge.request(`${host}:1:2`, `/malformed-${marker}`, { insecure: true, servername: host });
  const by = rig.servedBy(res);
  const line = await waitFor('the access log line', async () => (await rig.edge.accessLog()).find((l) => l.path === `/malformed-${marker}`), 15_000, 250);
  const appSaw = res.status === 200 && res.text().includes(`/malformed-${marker}`);
  t.comment(`(e) Host "${host}:1:2": Traefik router "${line.router}" answered ${line.status} (server ${line.serverUrl}); the app saw the request: ${appSaw} (connected by: ${by})`);
  t.equal(line.status, res.status, 'the access log line is this request');
  // Traefik's parseHost keeps "host:1:2" whole, so no router of the app's (nor ours) matches: the catch-all's.
  t.equal(res.status, 400, 'the activator answers 400');
  t.equal(res.header('x-activator-error'), 'SA_BAD_REQUEST');
  t.notOk(appSaw, 'the app never saw it');
});
