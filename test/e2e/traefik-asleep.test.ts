/**
 * What is broken today, measured through the real Traefik (issue 9, part 3). A sleeping app has no
 * running task, so Traefik drops its routers and the middlewares on its labels; its requests fall
 * to the priority-1 catch-all and the activator. Each test measures and prints its number. Where
 * today's behaviour is wrong, the expectation is a `todo` subtest that carries the number this
 * file measured when it was written; the issue "Sleeping apps keep their Traefik router" fixes them.
 *   (a) TLS on the first visit   (b) middlewares while asleep   (c) requests across a scale-down
 *   (d) a silent WebSocket through Traefik   (e) a malformed Host port
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

t.test('(a) TLS on the first HTTPS visit to an app deployed asleep', async (t) => {
  const name = `${run}-tls`;
  const host = `tls.${domain}`;
  const app = await createApp({ name, run, on: rig.on, host, labels: seedLabels(name, host) });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);

  // The handshake of the first visit (nothing else has touched this host).
  const first = await rig.edge.certificate(host);
  t.comment(`(a) first visit, asleep: subject "${first.subject}", issuer "${first.issuer}", validates against Pebble's root: ${first.authorized}${first.authorizationError ? ` (${first.authorizationError})` : ''}`);
  t.equal((await serviceState(name)).replicas, 0, 'the handshake alone did not wake it');

  // The browser would stop here; a client that goes on wakes it, and Traefik's router then gets a certificate.
  const woke = await rig.edge.request(host, '/', { insecure: true });
  t.equal(woke.status, 200, 'woken through the catch-all');
  const wokeAt = Date.now();
  const valid = await rig.edge.waitForCertificate(host, 60_000);
  t.comment(`(a) after the wake: issuer "${valid.issuer}", valid ${((Date.now() - wokeAt) / 1000).toFixed(1)} s after the first answer`);
  t.match(valid.issuer, /Pebble Intermediate/, "once awake, the le resolver's certificate from Pebble");

  // Asleep again, its router gone: stack/traefik.yml counts on Traefik still serving the stored certificate.
  t.equal((await rig.activator.adminFetch(`/api/apps/${name}/sleep`, { method: 'POST' })).status, 200, 'put back to sleep');
  // (a probe that meets the old router dials the gone task, and Traefik waits 30 s for that, see (c):
  // give up on it after 2 s and probe again)
  await untilRouted('the catch-all answering for it again', () => rig.edge.request(host, '/', { insecure: true, headers: { 'user-agent': MONITOR_UA }, timeoutMs: 2000 }), (r) => r.header('x-activator-state') === 'asleep', 60_000);
  const again = await rig.edge.certificate(host);
  t.comment(`(a) next visit, asleep again: issuer "${again.issuer}", validates: ${again.authorized}`);
  t.ok(again.authorized && again.fingerprint256 === valid.fingerprint256, 'asleep again, Traefik still serves the certificate Pebble issued (by SNI, without a router)');

  t.test('the first visit gets a certificate that validates', { todo: 'measured 2026-12-01: "TRAEFIK DEFAULT CERT", issuer "TRAEFIK DEFAULT CERT", does not validate (DEPTH_ZERO_SELF_SIGNED_CERT)' }, async (t) => {
    t.ok(first.authorized, `validates against Pebble's root (got "${first.issuer}")`);
    t.match(first.issuer, /Pebble/);
  });
});

t.test('(b) middlewares defined on a sleeping app: asleep, during the wake, once Traefik routes to it', async (t) => {
  const password = randomBytes(6).toString('hex');
  const sha = `{SHA}${createHash('sha1').update(password).digest('base64')}`;
  const cases = [
    { kind: 'basicAuth', mw: 'auth', labels: { basicauth: { users: `ops:${sha}` } }, refused: 401 },
    // 192.0.2.0/24 (TEST-NET-1) is nobody here: the test client is refused.
    { kind: 'ipAllowList', mw: 'allow', labels: { ipallowlist: { sourcerange: '192.0.2.0/24' } }, refused: 403 },
  ];
  const results = await Promise.all(cases.map(async (c) => {
    const name = `${run}-${c.mw}`;
    const host = `${c.mw}.${domain}`;
    const middleware = `${name}-${c.mw}`;
    const [type, fields] = Object.entries(c.labels)[0] as [string, Record<string, string>];
    const labels: Record<string, string> = { ...seedLabels(name, host, [middleware]), [LABELS.idleTimeout]: '10m' };
    for (const [k, v] of Object.entries(fields)) labels[`traefik.http.middlewares.${middleware}.${type}.${k}`] = v;
    const app = await createApp({ name, run, on: rig.on, host, env: { STARTUP_DELAY_MS: '1500' }, labels });
    t.teardown(app.remove);
    await rig.activator.waitForApp(name);

    const ask = () => rig.edge.request(host, `/private?kind=${c.kind}`, { insecure: true });
    const asleep = ask();
    await sleep(500); // the first request is held now: the app is waking
    const waking = await ask();
    const asleepReply = await asleep;
    const routed = await untilRouted(`${c.kind}: Traefik's router with its middleware`, ask, (r) => r.status === c.refused);
    return { c, asleep: asleepReply, waking, routed };
  }));
  for (const { c, asleep, waking, routed } of results) {
    t.comment(`(b) ${c.kind}, request without credentials / from a refused address: asleep ${asleep.status} (served by ${rig.servedBy(asleep)}), during the wake ${waking.status} (${rig.servedBy(waking)}), once Traefik routes ${routed.reply.status} (${(routed.afterMs / 1000).toFixed(1)} s later)`);
    t.equal(routed.reply.status, c.refused, `${c.kind}: refused (${c.refused}) once Traefik routes to the app`);
  }
  t.test('the protection holds while the app sleeps and wakes', { todo: 'measured 2026-12-01: basicAuth 200 asleep, 200 waking, 401 once routed; ipAllowList 200, 200, 403 (the activator proxies around the middleware)' }, async (t) => {
    for (const { c, asleep, waking } of results) {
      t.equal(asleep.status, c.refused, `${c.kind}: asleep`);
      t.equal(waking.status, c.refused, `${c.kind}: during the wake`);
    }
  });
});

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
  const sleepRes = await rig.activator.adminFetch(`/api/apps/${name}/sleep`, { method: 'POST' });
  const downAt = Date.now() - started;
  t.equal(sleepRes.status, 200, 'scaled down by the activator');
  await client;
  const failures = outcomes.filter((o) => o.status !== 200);
  const statuses: Record<string, number> = {};
  for (const f of failures) statuses[String(f.status)] = (statuses[String(f.status)] ?? 0) + 1;
  const span = failures.length > 0 ? `, sent ${((failures[0]!.at - downAt) / 1000).toFixed(1)}…${((failures.at(-1)!.at - downAt) / 1000).toFixed(1)} s after the scale-down` : '';
  t.comment(`(c) ${outcomes.length} requests, ${failures.length} failed: ${JSON.stringify(statuses)}${span}; served by activator ${outcomes.filter((o) => o.by === 'activator').length}, by Traefik's router ${outcomes.filter((o) => o.by === 'traefik').length}`);
  t.ok(outcomes.length >= 100, `the client ran (${outcomes.length} requests)`);
  t.test('no request fails across the scale-down', { todo: 'measured 2026-12-01: 2-5 of 145-166 failed (502, and one with no answer in 10 s: Traefik dials the gone task for 30 s), sent 3.1-3.3 s after the scale-down' }, async (t) => {
    t.same(statuses, {}, 'no failures');
  });
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
  // Traefik's router, not the activator, carries the WebSocket (wss, with the certificate from Pebble).
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
  t.test('the app stays up while the WebSocket is open', { todo: 'measured 2026-12-01: scaled down 4.0 s after the WebSocket opened (idle timeout 3 s), the connection cut 7.0 s after it opened' }, async (t) => {
    t.notOk(scaledDown, 'never scaled down');
    t.equal(closedAt, 0, 'the connection stayed open');
  });
  if (!scaledDown) ws.close();
  await waitAsleep(name, 30_000).catch(() => undefined);
});

t.test('(e) Host: <app host>:1:2 through Traefik', async (t) => {
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
  t.test("such a request reaches the app only through its own router", { todo: 'measured 2026-12-01: router activator-fallback-https@swarm answered 200; the activator strips ":1:2" and proxies, so the app saw it' }, async (t) => {
    t.not(line.router, 'activator-fallback-https@swarm', "not the catch-all's");
    t.notOk(appSaw && by === 'activator', 'the app did not get it through the activator');
  });
});
