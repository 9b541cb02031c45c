/**
 * Unknown hosts (scanners, bots, stale DNS): a 404 problem answer from the request hook, counted
 * in activator_unknown_host_requests_total, with no Docker call; a flood of them is not a flood of
 * info lines (one per host per minute, the rest at debug).
 */
import { Writable } from 'node:stream';
import t from 'tap';
import pino from 'pino';
import { LABELS } from '../../../src/labels.js';
import type { ServiceInfo, SwarmClient } from '../../../src/swarm/swarm.js';
import { proxyStack } from '../../helpers/wake-stack.js';

async function setup(t: { teardown(fn: () => unknown): void }, level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const log = pino({ level }, sink);
  const service: ServiceInfo = { id: 'svc-web', name: 'web', version: 1, labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.test', [LABELS.port]: '80' }, replicas: 0, updatedAt: '', templateKey: 't1' };
  let dockerCalls = 0;
  const swarm: SwarmClient = {
    ping: async () => void dockerCalls++,
    listServices: async () => (dockerCalls++, [service]),
    inspectService: async () => (dockerCalls++, service),
    scaleService: async () => (dockerCalls++, { changed: false, version: 1, previousReplicas: 0 }),
    updateServiceLabels: async () => (dockerCalls++, service),
    listTasks: async () => (dockerCalls++, []),
    watchServices: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    containerNetworkBytes: async () => null,
  };
  const { app, metrics } = await proxyStack(t, swarm, { log, probeIntervalMs: 20 });
  const callsAtStart = dockerCalls;
  return { app, lines, metrics, dockerCallsSince: () => dockerCalls - callsAtStart };
}

t.test('404 SA_UNKNOWN_HOST as JSON or a page, counted, no Docker call, one info line', async (t) => {
  const { app, lines, metrics, dockerCallsSince } = await setup(t, 'info');
  const json = await app.inject({ url: '/x', headers: { host: 'nobody.example.com' } });
  t.equal(json.statusCode, 404);
  t.equal(json.headers['x-activator-error'], 'SA_UNKNOWN_HOST');
  t.match(json.json(), { error: 'SA_UNKNOWN_HOST', status: 404, message: /nobody\.example\.com/ });
  const html = await app.inject({ url: '/', headers: { host: 'nobody.example.com', accept: 'text/html' } });
  t.equal(html.statusCode, 404);
  t.match(html.body, /<h1>404 Unknown host<\/h1>/);
  for (let i = 0; i < 50; i++) await app.inject({ url: `/scan/${i}`, headers: { host: 'nobody.example.com' } });
  t.equal((await metrics.unknownHosts.get()).values[0]?.value, 52, 'every one counted');
  t.equal(dockerCallsSince(), 0, 'no Docker call');
  t.equal(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST').length, 1, 'one info line for 52 requests');
});

t.test('at debug, every unknown-host request is logged with its host and URL', async (t) => {
  const { app, lines } = await setup(t, 'debug');
  await app.inject({ url: '/wp-login.php', headers: { host: 'scanner.example.com' } });
  await app.inject({ url: '/.env', headers: { host: 'scanner.example.com' } });
  t.match(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST'), [
    { level: 30, host: 'scanner.example.com', url: '/wp-login.php', status: 404 },
    { level: 20, host: 'scanner.example.com', url: '/.env', status: 404 },
  ]);
});

t.test('unknown-Host upgrade (WebSocket) requests share the limiter: one info line for many', async (t) => {
  const { app, lines } = await setup(t, 'info');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const { connect } = await import('node:net');
  for (let i = 0; i < 30; i++) {
    await new Promise<void>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.write('GET /ws HTTP/1.1\r\nHost: scanner.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
      sock.on('data', () => sock.destroy());
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
  }
  // A plain request for the same Host right after: the same window, so no second line either.
  await app.inject({ method: 'GET', url: '/', headers: { host: 'scanner.example' } });
  t.equal(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST').length, 1, 'one info line for 31 requests (30 upgrades and a plain one)');
});

/** One HTTP/1.1 exchange at a time on a raw socket: the head, and a body of its Content-Length. */
function rawClient(port: number) {
  return import('node:net').then(({ connect }) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let wake: (() => void) | undefined;
    let closed = false;
    sock.on('data', (d: Buffer) => ((buf = Buffer.concat([buf, d])), wake?.()));
    sock.on('close', () => ((closed = true), wake?.()));
    const exchange = async (raw: string | Buffer, head = false) => {
      sock.write(raw);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end >= 0) {
          const headText = buf.subarray(0, end).toString('latin1');
          const length = head ? 0 : Number(/\r\ncontent-length: (\d+)/i.exec(headText)?.[1] ?? 0);
          if (buf.length >= end + 4 + length) {
            const body = buf.subarray(end + 4, end + 4 + length).toString();
            buf = buf.subarray(end + 4 + length);
            const [statusLine, ...lines] = headText.split('\r\n');
            const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
            return { status: Number(statusLine?.split(' ')[1]), headers, body };
          }
        }
        if (closed) throw new Error(`connection closed; had ${buf.length} bytes`);
        await new Promise<void>((r) => (wake = r));
      }
    };
    return { exchange, close: () => sock.destroy(), closed: () => closed };
  });
}

t.test('over a real socket, unknown Hosts are answered at the server door: the same answer, keep-alive kept, bodies drained, known Hosts on to the chain', async (t) => {
  const { app, lines, metrics, dockerCallsSince } = await setup(t, 'info');
  const reachedFastify: string[] = [];
  app.addHook('onResponse', async (request) => void reachedFastify.push(`${request.method} ${request.url}`));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const client = await rawClient(typeof addr === 'object' && addr ? addr.port : 0);
  t.teardown(client.close);

  const json = await client.exchange('GET /x HTTP/1.1\r\nHost: nobody.example.com\r\n\r\n');
  const injected = await app.inject({ url: '/x', headers: { host: 'nobody.example.com' } });
  t.equal(json.status, 404);
  t.equal(json.body, injected.body, 'the same body as the chain gives through inject()');
  for (const h of ['x-activator-error', 'cache-control', 'content-type', 'content-length']) t.equal(json.headers[h], String(injected.headers[h]), `the same ${h}`);
  t.equal(json.headers.connection, 'keep-alive');

  const html = await client.exchange('GET / HTTP/1.1\r\nHost: nobody.example.com\r\nAccept: text/html\r\n\r\n');
  t.equal(html.status, 404, 'the same connection serves the next request');
  t.match(html.body, /<h1>404 Unknown host<\/h1>/);
  t.equal(html.headers['content-length'], String(Buffer.byteLength(html.body)));

  const head = await client.exchange('HEAD /x HTTP/1.1\r\nHost: nobody.example.com\r\n\r\n', true);
  t.equal(head.status, 404);
  t.equal(head.headers['x-activator-error'], 'SA_UNKNOWN_HOST');

  const body = Buffer.alloc(256 * 1024, 0x61);
  const post = await client.exchange(Buffer.concat([Buffer.from(`POST /upload HTTP/1.1\r\nHost: nobody.example.com\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
  t.equal(post.status, 404);
  const after = await client.exchange('GET /after HTTP/1.1\r\nHost: nobody.example.com\r\n\r\n');
  t.equal(after.status, 404, 'the unread body was drained: the connection still parses requests');

  // A known Host goes on to fastify: the chain's limits step answers this one (413), no wake.
  const known = await client.exchange(`POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: ${64 * 1024 * 1024 * 1024}\r\n\r\n`);
  t.equal(known.status, 413);
  t.equal(known.headers['x-activator-error'], 'SA_BODY_TOO_LARGE');
  t.same(reachedFastify, ['GET /x', 'POST /'], 'fastify saw only the inject() request and the known Host');

  t.equal((await metrics.unknownHosts.get()).values[0]?.value, 6, 'every unknown-Host request counted (5 at the door, 1 through inject)');
  t.equal(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST').length, 1, 'one info line for all of them');
  t.equal(dockerCallsSince(), 0, 'no Docker call');
});
