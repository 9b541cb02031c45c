/**
 * The proxy app's HTTP semantics against a real origin on 127.0.0.1 (the app is already known
 * ready, so no Docker is involved; an in-memory SwarmClient stands in for discovery).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { AppRegistry } from '../../src/discovery/app-registry.js';
import { buildProxyApp } from '../../src/http/app.js';
import { OwnTraffic } from '../../src/idle/traffic.js';
import { LABELS } from '../../src/labels.js';
import { Metrics } from '../../src/metrics.js';
import { WakeCoordinator } from '../../src/wake/coordinator.js';
import { ReadinessProbe } from '../../src/wake/readiness.js';
import { send } from '../helpers/http.js';
import { MemorySwarm } from '../helpers/memory-swarm.js';

const log = pino({ level: 'silent' });

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function setup(t: { teardown(fn: () => unknown): void }, handler?: (req: IncomingMessage, res: import('node:http').ServerResponse) => void) {
  const seen: Seen[] = [];
  const origin: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (handler) handler(req, res);
      else res.end('ok');
    });
  });
  const wss = new WebSocketServer({ server: origin });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const addr = origin.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.behaviour.set('web', { port, startMs: 1 });
  const registry = new AppRegistry({ swarm, defaults: { strategy: 'blocking', wakeTimeoutMs: 5000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: 'net' }, resyncIntervalMs: 60_000, log });
  await registry.start();
  const readiness = new ReadinessProbe(swarm, 500);
  const metrics = new Metrics({ defaultMetrics: false });
  const coordinator = new WakeCoordinator({ registry, swarm, readiness, metrics, log, probeIntervalMs: 5 });
  const traffic = new OwnTraffic(metrics);
  const app = await buildProxyApp({
    config: { maxBodyBytes: 1 << 20, maxHeldPerApp: 100, retryAfterSeconds: 5, internalPrefix: '/__activator', monitorUserAgents: undefined, monitorPaths: undefined, monitorStatus: 200 },
    registry,
    coordinator,
    traffic,
    metrics,
    log,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  t.teardown(async () => {
    await app.close();
    await registry.stop();
    await readiness.close();
    wss.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });
  // Wake it once (in memory), so the tests below run on the fast path.
  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  await coordinator.ensureReady(entry, new AbortController().signal);
  return { url, port: Number(url.split(':')[2]), seen, traffic, app };
}

t.test('a client that leaves during a POST does not leave the app "open" forever', async (t) => {
  const { url, traffic } = await setup(t, (_req, res) => setTimeout(() => res.end('late'), 300));
  const ctrl = new AbortController();
  const pending = send(`${url}/slow`, { method: 'POST', headers: { host: 'web.test', 'content-type': 'text/plain' }, body: 'x', signal: ctrl.signal }).catch(() => 'aborted');
  await new Promise((r) => setTimeout(r, 80));
  t.equal(traffic.open('web'), 1, 'open while in flight');
  ctrl.abort();
  await pending;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(traffic.open('web'), 0, 'closed when the client left');
});

t.test('an empty body with a JSON content type arrives empty', async (t) => {
  const { url, seen } = await setup(t);
  const res = await send(`${url}/api`, { method: 'POST', headers: { host: 'web.test', 'content-type': 'application/json', 'content-length': '0' } });
  t.equal(res.status, 200);
  t.equal(seen.at(-1)?.body, '');
  t.equal(seen.at(-1)?.headers['content-length'], '0');
});

t.test('Expect: 100-continue and stray hop-by-hop headers are not forwarded', async (t) => {
  const { url, seen } = await setup(t);
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${url}/upload`, { method: 'PUT', headers: { host: 'web.test', expect: '100-continue', 'keep-alive': 'timeout=5', 'content-type': 'text/plain', 'content-length': '5' } });
    req.on('continue', () => req.end('hello'));
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  t.equal(status, 200);
  t.equal(seen.at(-1)?.body, 'hello');
  t.equal(seen.at(-1)?.headers.expect, undefined);
});

t.test('methods fastify does not route by default are proxied (WebDAV)', async (t) => {
  const { url, seen } = await setup(t);
  for (const method of ['PROPFIND', 'MKCOL', 'PURGE']) {
    const res = await send(`${url}/dav/x`, { method, headers: { host: 'web.test' } });
    t.equal(res.status, 200, method);
    t.equal(seen.at(-1)?.method, method);
  }
});

t.test('WebSocket: a declined upgrade is relayed with sound framing', async (t) => {
  const { url } = await setup(t);
  const raw = await new Promise<string>((resolve) => {
    const sock = connect(Number(url.split(':')[2]), '127.0.0.1', () => {
      // The origin's ws server answers 400 to an upgrade without a valid key.
      sock.write('GET /chat HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    let data = '';
    sock.on('data', (c) => (data += c.toString()));
    sock.on('close', () => resolve(data));
    setTimeout(() => sock.destroy(), 2000);
  });
  t.match(raw, /^HTTP\/1\.1 400 /, 'the app’s own answer');
  t.notMatch(raw, /transfer-encoding: chunked/i, 'no chunked framing on a de-chunked body');
  t.match(raw, /Connection: close/);
});

t.test('closing the app does not wait for open WebSockets', async (t) => {
  const { url, app } = await setup(t);
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`${url.replace('http', 'ws')}/chat`, { headers: { host: 'web.test' } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const echoed = await new Promise<string>((resolve) => {
    ws.once('message', (m) => resolve(String(m)));
    ws.send('ping');
  });
  t.equal(echoed, 'ping', 'tunnel works');
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const started = Date.now();
  await app.close();
  await closed;
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms with a WebSocket open`);
});

t.test('unknown hosts: 404 with one info line per host per minute, not one per request', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const swarm = new MemorySwarm();
  const registry = new AppRegistry({ swarm, defaults: { strategy: 'blocking', wakeTimeoutMs: 5000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: 'net' }, resyncIntervalMs: 60_000, log: logger });
  await registry.start();
  const metrics = new Metrics({ defaultMetrics: false });
  const readiness = new ReadinessProbe(swarm, 500);
  const app = await buildProxyApp({
    config: { maxBodyBytes: 1 << 20, maxHeldPerApp: 100, retryAfterSeconds: 5, internalPrefix: '/__activator', monitorUserAgents: undefined, monitorPaths: undefined, monitorStatus: 200 },
    registry,
    coordinator: new WakeCoordinator({ registry, swarm, readiness, metrics, log: logger, probeIntervalMs: 5 }),
    traffic: new OwnTraffic(metrics),
    metrics,
    log: logger,
  });
  t.teardown(async () => {
    await app.close();
    await registry.stop();
    await readiness.close();
  });
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ method: 'GET', url: '/', headers: { host: i % 2 ? 'a.example.com' : 'b.example.com' } });
    t.equal(res.statusCode, 404);
  }
  const logged = lines.filter((l) => l.code === 'SA_UNKNOWN_HOST');
  t.same(logged.map((l) => l.host).sort(), ['a.example.com', 'b.example.com'], 'one line per host');
  t.equal((await metrics.unknownHosts.get()).values[0]?.value, 20, 'every one counted');
  t.equal(swarm.calls.filter((c) => c !== 'listServices').length, 0, 'no Docker call');
});
