/**
 * Security bounds of the proxy app against a real origin on 127.0.0.1 (issue 13, section 1):
 * forwarded headers (Connection-listed, untrusted peers), the global body budget, error bodies
 * without internals. An in-memory SwarmClient stands in for discovery (pure HTTP logic here; the
 * real-swarm matrix is test/e2e/security.test.ts).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import type { HttpDeps } from '../../../src/http/app.js';
import { LABELS } from '../../../src/labels.js';
import { rawExchange, send } from '../../helpers/http.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';
import { discovered, proxyStack } from '../../helpers/wake-stack.js';

async function setup(t: { teardown(fn: () => unknown): void }, config: Partial<HttpDeps['config']> = {}, handler?: (req: IncomingMessage, res: import('node:http').ServerResponse) => void, app: { labels?: Record<string, string>; startMs?: number; wake?: boolean } = {}) {
  const seen: Array<{ url: string; headers: IncomingMessage['headers']; bytes: number }> = [];
  /** Every request head the app received, complete or not. */
  const heads: string[] = [];
  const origin: Server = createServer((req, res) => {
    heads.push(req.url ?? '');
    req.on('error', () => undefined);
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, bytes });
      if (handler) handler(req, res);
      else res.end('ok');
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const addr = origin.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port), ...app.labels });
  swarm.behaviour.set('web', { port, startMs: app.startMs ?? 1 });
  const stack = await proxyStack(t, swarm, { config });
  const proxyApp = stack.app;
  await proxyApp.listen({ host: '127.0.0.1', port: 0 });
  const a = proxyApp.server.address();
  const appPort = typeof a === 'object' && a ? a.port : 0;
  t.teardown(async () => {
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });
  if (app.wake !== false) await stack.coordinator.ensureReady(discovered(stack, 'web'), new AbortController().signal);
  return { url: `http://127.0.0.1:${appPort}`, port: appPort, seen, heads };
}

const forwarded = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'web.test', 'x-real-ip': '203.0.113.7' };

t.test('Connection: X-Forwarded-For does not strip the forwarded headers (the pattern of Traefik CVE-2024-45410)', async (t) => {
  const { port, seen } = await setup(t);
  const head = ['GET /cve HTTP/1.1', 'Host: web.test', 'Connection: close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Real-Ip, X-Other', ...Object.entries(forwarded).map(([k, v]) => `${k}: ${v}`), 'X-Other: dropped'];
  const res = await rawExchange(port, `${head.join('\r\n')}\r\n\r\n`);
  t.match(res, /^HTTP\/1\.1 200 /);
  const h = seen.at(-1)?.headers ?? {};
  t.equal(h['x-forwarded-for'], '203.0.113.7', 'X-Forwarded-For kept');
  t.equal(h['x-forwarded-proto'], 'https', 'X-Forwarded-Proto kept');
  t.equal(h['x-forwarded-host'], 'web.test', 'X-Forwarded-Host kept');
  t.equal(h['x-real-ip'], '203.0.113.7', 'X-Real-Ip kept');
  t.equal(h['x-other'], undefined, 'other headers the Connection header lists still go');
});

t.test('a trusted peer (loopback is a local network) keeps its X-Forwarded-*', async (t) => {
  const { url, seen } = await setup(t);
  await send(`${url}/trusted`, { headers: { host: 'web.test', ...forwarded } });
  t.equal(seen.at(-1)?.headers['x-forwarded-for'], '203.0.113.7');
  t.equal(seen.at(-1)?.headers['x-forwarded-proto'], 'https');
});

t.test('an untrusted peer: its X-Forwarded-*, X-Real-Ip and Forwarded are replaced by what the activator saw', async (t) => {
  const { url, seen } = await setup(t, { trustedProxies: ['10.255.255.254/32'] });
  await send(`${url}/untrusted`, { headers: { host: 'web.test', ...forwarded, forwarded: 'for=203.0.113.7', 'x-forwarded-port': '443' } });
  const h = seen.at(-1)?.headers ?? {};
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'the peer address, not the claimed one');
  t.equal(h['x-forwarded-proto'], 'http', 'the scheme the activator saw');
  t.equal(h['x-forwarded-host'], 'web.test');
  t.equal(h['x-real-ip'], '127.0.0.1');
  t.equal(h.forwarded, undefined, 'Forwarded dropped');
  t.equal(h['x-forwarded-port'], undefined, 'X-Forwarded-Port dropped');
});

t.test('bodies buffered at once are bounded across requests: over the budget, 503 SA_OVERLOADED with Retry-After, and nothing reaches the app', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const { url, seen } = await setup(t, { maxBufferedBodyBytes: 300_000 }, (req, res) => void (req.url === '/one' ? gate : Promise.resolve()).then(() => res.end('ok')));
  const body = Buffer.alloc(200_000, 'a');
  // The first body is buffered and held (the app has not answered yet): 200 kB of the 300 kB budget.
  const first = send(`${url}/one`, { method: 'POST', headers: { host: 'web.test', 'content-type': 'application/octet-stream' }, body });
  await new Promise((r) => setTimeout(r, 150));
  const second = await send(`${url}/two`, { method: 'POST', headers: { host: 'web.test', 'content-type': 'application/octet-stream' }, body });
  t.equal(second.status, 503);
  t.equal(second.header('x-activator-error'), 'SA_OVERLOADED');
  t.equal(second.header('retry-after'), '5');
  t.notOk(seen.some((s) => s.url === '/two'), 'the refused request did not reach the app');
  release();
  t.equal((await first).status, 200);
  const third = await send(`${url}/three`, { method: 'POST', headers: { host: 'web.test', 'content-type': 'application/octet-stream' }, body });
  t.equal(third.status, 200, 'the budget is freed when a response ends');
});

t.test('a slow client gets its head cut off after ACTIVATOR_HEADERS_TIMEOUT', async (t) => {
  const { port } = await setup(t, { headersTimeoutMs: 500, requestTimeoutMs: 1000 });
  const started = Date.now();
  const answer = await new Promise<string>((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('GET / HTTP/1.1\r\nHost: web.test\r\nX-Slow: '));
    let data = '';
    const drip = setInterval(() => sock.write('a'), 100);
    sock.on('data', (c) => (data += c.toString('latin1')));
    sock.on('close', () => {
      clearInterval(drip);
      resolve(data);
    });
    sock.on('error', () => undefined);
    setTimeout(() => sock.destroy(), 5000);
  });
  const ms = Date.now() - started;
  t.match(answer, /^HTTP\/1\.1 408 /, '408 Request Timeout');
  t.ok(ms < 3000, `closed after ${ms} ms (Node's default: 60 s, checked every 30 s)`);
});

t.test('smuggling and malformed framing: 400, and nothing reaches the app (a GET body is read in full before it is sent)', async (t) => {
  const { port, heads } = await setup(t);
  const cases: Record<string, string> = {
    'CL+TE': 'POST /clte HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n',
    'two Content-Lengths': 'POST /dupcl HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd',
    'obs-fold': 'GET /fold HTTP/1.1\r\nHost: web.test\r\nX-Foo: a\r\n bar\r\n\r\n',
    'bad chunk size (POST)': 'POST /badchunk HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    'bad chunk size (GET)': 'GET /badchunk-get HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n',
    'chunk size overflow': 'POST /overflow HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n',
  };
  const before = heads.length;
  for (const [name, raw] of Object.entries(cases)) {
    const answer = await rawExchange(port, raw, 1500);
    t.match(answer, /^HTTP\/1\.1 400 /, `${name}: 400`);
  }
  // The bad chunk a moment after a good one: a body streamed to the app had its head there by then.
  const late = await new Promise<string>((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('GET /late-bad-chunk HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'));
    setTimeout(() => sock.write('zz\r\nabc\r\n0\r\n\r\n'), 300);
    let data = '';
    sock.on('data', (c) => (data += c.toString('latin1')));
    sock.on('close', () => resolve(data));
    sock.on('error', () => resolve(data));
    setTimeout(() => sock.destroy(), 2000);
  });
  t.match(late, /^HTTP\/1\.1 400 /, 'a bad chunk after a good one: 400');
  await new Promise((r) => setTimeout(r, 200));
  t.same(heads.slice(before), [], 'the app saw not even a request head of them');
});

t.test('waiting-page wakes take a hold slot: over the bound, 503 with Retry-After instead of more work', async (t) => {
  const { url } = await setup(t, { maxHeldPerApp: 1 }, undefined, { labels: { [LABELS.strategy]: 'waiting-page' }, startMs: 1500, wake: false });
  const browser = { host: 'web.test', accept: 'text/html' };
  const first = await send(`${url}/`, { headers: browser });
  t.equal(first.status, 503);
  t.equal(first.header('x-activator-waking'), 'web', 'the first browser gets the waiting page (and its wake a slot)');
  const second = await send(`${url}/`, { headers: browser });
  t.equal(second.status, 503);
  t.equal(second.header('x-activator-error'), 'SA_TOO_MANY_HELD', 'the next one is over the bound');
  t.equal(second.header('retry-after'), '5');
  await new Promise((r) => setTimeout(r, 2000));
  const ready = await send(`${url}/`, { headers: browser });
  t.equal(ready.status, 200, 'the slot is freed when the wake settles');
});

t.test('a held request is answered at its wake timeout + 5 s, even when a Docker call never returns', async (t) => {
  const swarm = new (class extends MemorySwarm {
    override listTasks(): Promise<never> {
      return new Promise(() => undefined); // a Docker call stuck for good
    }
  })();
  swarm.add('stuck', { [LABELS.hosts]: 'stuck.test', [LABELS.port]: '80', [LABELS.wakeTimeout]: '200ms' });
  const { app } = await proxyStack(t, swarm);
  const started = Date.now();
  const res = await app.inject({ method: 'GET', url: '/', headers: { host: 'stuck.test' } });
  const ms = Date.now() - started;
  t.equal(res.statusCode, 504);
  t.equal(res.headers['x-activator-error'], 'SA_WAKE_TIMEOUT');
  t.ok(ms >= 5000 && ms < 7000, `answered after ${ms} ms (wake timeout 200 ms + 5 s)`);
});
