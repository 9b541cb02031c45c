/**
 * Long-lived connections through the real Traefik (issue 11, must-hold 5): the activator publishes,
 * for every router of an app, routers for WebSocket upgrades and event streams that point at
 * itself at all times, so each such connection passes through its tunnel and keeps the app awake
 * for as long as it is open. traefik-asleep.test.ts (d) does this for a silent WebSocket.
 *   (a) a silent event stream (SSE: headers, then no byte) through Traefik for 3 idle timeouts
 *   (b) the per-app label swarm-activator.traefik.long-lived=false: no such routers, and WebSockets
 *       and event streams go through the app's own router (Traefik connects to the app itself)
 * The sample app tells who connected: /sse/silent in its x-remote-address header, a WebSocket on
 * /whoami in its first message.
 */
import t from 'tap';
import { Agent, request, type Dispatcher } from 'undici';
import WebSocket from 'ws';
import { seedLabels, startRig, type EdgeRig } from '../helpers/traefik.js';
import { createApp, runId, serviceState, waitAsleep, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';
import { normaliseName } from '../../src/traefik-rule.js';

const run = runId('tfl');
// startRig may first wait for another file's Traefik rig on this swarm (one at a time).
t.setTimeout(15 * 60_000);
const domain = `${run}.sa-test.example.com`;
let rig: EdgeRig;

t.before(async () => {
  rig = await startRig({
    run,
    env: {
      ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms',
      ACTIVATOR_MIN_AWAKE: '0',
      ACTIVATOR_WAKE_TIMEOUT: '60s',
      ACTIVATOR_TRAEFIK_METRICS_INTERVAL: '500ms',
      // Earlier requests' bytes are old news within a second: (a) sees only the silent stream.
      ACTIVATOR_NETWORK_STATS_INTERVAL: '1s',
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
/** Our name for an app's router (src/traefik/dynamic-config.ts). */
const ours = (service: string, name: string) => `sa-${normaliseName(service)}-${normaliseName(name)}`.toLowerCase();

/** An awake app with the seed's labels, routed by Traefik's own router, with its certificate. */
async function awakeApp(t: { teardown(fn: () => unknown): void }, short: string, labels: Record<string, string> = {}) {
  const name = `${run}-${short}`;
  const host = `${short}.${domain}`;
  const app = await createApp({ name, run, on: rig.on, host, replicas: 1, labels: { ...seedLabels(name, host), [LABELS.idleTimeout]: '10m', ...labels } });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  await waitFor(`Traefik's router for ${name}`, async () => rig.servedBy(await rig.edge.request(host, '/', { insecure: true })) === 'traefik', 30_000, 200);
  await rig.edge.waitForCertificate(host, 60_000);
  return { name, host };
}

interface OpenStream {
  status: number;
  /** Who connected to the app for this stream (the sample app's x-remote-address). */
  connectedBy: string | undefined;
  contentType: string | undefined;
  bytes(): number;
  /** When the stream ended from the other side (0: still open). */
  endedAt(): number;
  close(): Promise<void>;
}

/** GET /sse/silent through Traefik's HTTPS entry point, as a browser's EventSource asks for it. */
async function openEventStream(host: string, agent: Dispatcher): Promise<OpenStream> {
  const abort = new AbortController();
  const res = await request(`https://${rig.edge.address}:${rig.edge.httpsPort}/sse/silent`, {
    headers: { host, accept: 'text/event-stream', 'cache-control': 'no-cache' },
    dispatcher: agent,
    signal: abort.signal,
    headersTimeout: 30_000,
    bodyTimeout: 0,
  });
  let bytes = 0;
  let ended = 0;
  res.body.on('data', (chunk: Buffer) => (bytes += chunk.length));
  res.body.on('end', () => (ended ||= Date.now()));
  res.body.on('error', () => (ended ||= Date.now()));
  const header = (n: string) => {
    const v = res.headers[n];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  return {
    status: res.statusCode,
    connectedBy: header('x-remote-address'),
    contentType: header('content-type'),
    bytes: () => bytes,
    endedAt: () => ended,
    async close() {
      abort.abort();
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** A WebSocket on /whoami through Traefik: who connected to the app, then an echo. */
async function whoami(host: string): Promise<{ connectedBy: string; echoed: string; ws: WebSocket }> {
  const ws = new WebSocket(`wss://${rig.edge.address}:${rig.edge.httpsPort}/whoami`, { headers: { host }, ca: rig.edge.pebbleRoot, servername: host, handshakeTimeout: 10_000 } as WebSocket.ClientOptions);
  ws.on('error', () => undefined);
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no WebSocket message within 10 s')), 10_000);
      ws.once('message', (m: Buffer) => {
        clearTimeout(timer);
        resolve(m.toString());
      });
    });
  const first = next();
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const connectedBy = (JSON.parse(await first) as { remoteAddress: string }).remoteAddress;
  const echo = next();
  ws.send('still there?');
  return { connectedBy, echoed: await echo, ws };
}

const inFlight = async (app: string) => (await rig.activator.metric('activator_in_flight', { app })) ?? 0;

t.test('(a) a silent event stream through Traefik for 3 idle timeouts, then one idle timeout to sleep', async (t) => {
  const IDLE_MS = 3000;
  const { name, host } = await awakeApp(t, 'sse');
  // One request through Traefik right before: the idle timeout starts from activity the activator sees.
  const last = await rig.edge.request(host, '/last-request');
  t.equal(rig.servedBy(last), 'traefik', "the last plain request went through the app's own router");

  const agent = new Agent({ connect: { servername: host, ca: rig.edge.pebbleRoot } });
  t.teardown(() => agent.close());
  const stream = await openEventStream(host, agent);
  const openedAt = Date.now();
  t.teardown(() => stream.close());
  t.equal(stream.status, 200, 'the stream is open');
  t.match(stream.contentType, /^text\/event-stream/, 'an event stream');
  t.equal(stream.connectedBy, rig.activatorIp, "Traefik's event-stream router sent it to the activator, which connected to the app");
  t.equal(await inFlight(name), 1, "it is open in the activator's tunnel (activator_in_flight 1)");
  const put = await rig.activator.adminFetch(`/api/apps/${name}/idle-timeout`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idleTimeout: `${IDLE_MS}ms` }) });
  t.equal(put.status, 200, `idle timeout now ${IDLE_MS} ms`);

  let downAt = 0;
  let openSeen = 0;
  while (Date.now() - openedAt < 3 * IDLE_MS) {
    if (!downAt && (await serviceState(name)).replicas === 0) downAt = Date.now();
    if ((await inFlight(name)) === 1) openSeen++;
    await sleep(200);
  }
  const endedAt = stream.endedAt();
  t.comment(`(a) event stream open and silent through Traefik for ${3 * IDLE_MS} ms (idle timeout ${IDLE_MS} ms): ${stream.bytes()} body bytes; scaled down under it: ${downAt > 0}${downAt ? ` (${((downAt - openedAt) / 1000).toFixed(1)} s after it opened)` : ''}; stream ended: ${endedAt ? `yes, ${((endedAt - openedAt) / 1000).toFixed(1)} s after it opened` : 'no'}`);
  t.equal(stream.bytes(), 0, 'silent: not one byte of body (so no byte counter saw activity)');
  t.equal(downAt, 0, 'never scaled down while the stream was open');
  t.equal(endedAt, 0, 'the stream stayed open');
  t.ok(openSeen > 0, `open in the activator at every look (${openSeen})`);

  await stream.close();
  const closed = Date.now();
  await waitFor('the stream closed in the activator', async () => (await inFlight(name)) === 0, 10_000, 100);
  const asleepAt = await waitAsleep(name, 60_000);
  const after = asleepAt - closed;
  t.comment(`(a) asleep ${(after / 1000).toFixed(1)} s after the event stream closed (idle timeout ${(IDLE_MS / 1000).toFixed(1)} s, then the handoff to Traefik)`);
  t.ok(after >= IDLE_MS - 600, 'not before one idle timeout after it closed');
  t.ok(after < IDLE_MS + 20_000, 'and soon after (the idle check, then the handoff)');
});

t.test('(b) swarm-activator.traefik.long-lived=false: WebSockets and event streams through the app’s own router', async (t) => {
  const [on, off] = await Promise.all([awakeApp(t, 'llon'), awakeApp(t, 'lloff', { [LABELS.traefikLongLived]: 'false' })]);
  const router = (app: string, suffix: string) => ours(app, `${app}-https${suffix}`);

  // What the activator publishes: long-lived routers for the default app only.
  const body = (await (await fetch(`${rig.activator.adminUrl}/traefik/dynamic-config`, { headers: { 'x-activator-provider-token': rig.providerToken } })).json()) as { http: { routers: Record<string, { rule: string }> } };
  const published = Object.keys(body.http.routers);
  t.ok(published.includes(router(on.name, '')) && published.includes(router(off.name, '')), 'both apps have their plain routers');
  t.ok(published.includes(router(on.name, '-ws')) && published.includes(router(on.name, '-sse')), 'the default app has WebSocket and event-stream routers');
  const offPrefix = `sa-${normaliseName(off.name)}-`.toLowerCase();
  t.notOk(published.some((r) => r.startsWith(offPrefix) && /-(ws|sse)$/.test(r)), `the app with the label has none (its routers: ${published.filter((r) => r.startsWith(offPrefix)).join(', ')})`);
  // And what Traefik made of it.
  const status = async (r: string) => (await rig.traefikApi<{ status?: string }>(`/api/http/routers/${r}@http`)).status;
  await waitFor("Traefik has the default app's WebSocket router", async () => (await status(router(on.name, '-ws'))) === 200, 30_000, 500);
  t.equal(await status(router(off.name, '-ws')), 404, 'Traefik has no WebSocket router of ours for the app with the label');
  t.equal(await status(router(off.name, '-sse')), 404, 'nor an event-stream router');

  // The default: a WebSocket goes through the activator's tunnel.
  const viaActivator = await whoami(on.host);
  t.teardown(() => viaActivator.ws.terminate());
  t.equal(viaActivator.connectedBy, rig.activatorIp, 'default: the activator connected the WebSocket to the app');
  t.equal(viaActivator.echoed, 'still there?', 'and it echoes');
  t.equal(await inFlight(on.name), 1, 'open in the activator');

  // The label: Traefik connects to the app itself, the activator never sees it.
  const direct = await whoami(off.host);
  t.teardown(() => direct.ws.terminate());
  t.equal(direct.connectedBy, rig.edge.taskIp, "long-lived=false: Traefik connected the WebSocket to the app (the app's own router)");
  t.equal(direct.echoed, 'still there?', 'and it echoes');
  t.equal(await inFlight(off.name), 0, 'not open in the activator');

  const agent = new Agent({ connect: { servername: off.host, ca: rig.edge.pebbleRoot } });
  t.teardown(() => agent.close());
  const stream = await openEventStream(off.host, agent);
  t.equal(stream.status, 200);
  t.equal(stream.connectedBy, rig.edge.taskIp, "long-lived=false: an event stream through the app's own router too");
  t.equal(await inFlight(off.name), 0, 'not open in the activator');
  await stream.close();
  t.comment(`(b) WebSocket connected by: default app ${viaActivator.connectedBy === rig.activatorIp ? 'the activator' : viaActivator.connectedBy}, long-lived=false app ${direct.connectedBy === rig.edge.taskIp ? 'Traefik' : direct.connectedBy}; event stream with long-lived=false connected by ${stream.connectedBy === rig.edge.taskIp ? 'Traefik' : stream.connectedBy}`);
  viaActivator.ws.close();
  direct.ws.close();
});
