/**
 * The proxy app's HTTP semantics against a real origin on 127.0.0.1 (the app is already known
 * ready, so no Docker is involved; an in-memory SwarmClient stands in for discovery).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import t from 'tap';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { LABELS } from '../../../src/labels.js';
import { rawExchange, send } from '../../helpers/http.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';
import { discovered, proxyStack } from '../../helpers/wake-stack.js';
import type { TaskInfo } from '../../../src/swarm/swarm.js';

const log = pino({ level: 'silent' });

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface SetupOptions {
  /** Uptime-monitor User-Agents (ACTIVATOR_MONITOR_USER_AGENTS). */
  monitorUserAgents?: RegExp;
  /** Leave the app asleep (no wake before the test). */
  asleep?: boolean;
  /** The origin leaves these upgrades unanswered (a task whose node is gone). */
  ignoreUpgrade?: (req: IncomingMessage) => boolean;
}

async function setup(t: { teardown(fn: () => unknown): void }, handler?: (req: IncomingMessage, res: import('node:http').ServerResponse) => void, appLog = log, opts: SetupOptions = {}) {
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
  const wss = new WebSocketServer({ noServer: true });
  origin.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (opts.ignoreUpgrade?.(req)) {
      socket.once('end', () => socket.destroy()); // the server's sockets are half-open: close it once the activator gives up
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const addr = origin.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) });
  swarm.behaviour.set('web', { port, startMs: 1 });
  const stack = await proxyStack(t, swarm, { appLog, config: { monitorUserAgents: opts.monitorUserAgents } });
  const { app, traffic } = stack;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  t.teardown(async () => {
    // Tunnels still open end here: origin.close() waits for upgraded sockets too.
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });
  // Wake it once (in memory), so the tests below run on the fast path.
  if (!opts.asleep) await stack.coordinator.ensureReady(discovered(stack, 'web'), new AbortController().signal);
  return { url, port: Number(url.split(':')[2]), seen, traffic, app, swarm, metrics: stack.metrics };
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
    ws.once('message', (m) => resolve((m as Buffer).toString()));
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
  const { app, metrics } = await proxyStack(t, swarm, { log: logger });
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ method: 'GET', url: '/', headers: { host: i % 2 ? 'a.example.com' : 'b.example.com' } });
    t.equal(res.statusCode, 404);
  }
  const logged = lines.filter((l) => l.code === 'SA_UNKNOWN_HOST');
  t.same(logged.map((l) => l.host).sort(), ['a.example.com', 'b.example.com'], 'one line per host');
  t.equal((await metrics.unknownHosts.get()).values[0]?.value, 20, 'every one counted');
  t.equal(swarm.calls.filter((c) => c !== 'listServices').length, 0, 'no Docker call');
});

/** A client that reads the first chunk of a response and then hangs up. */
function leaveAfterFirstChunk(url: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = httpRequest(url, { headers: { host: 'web.test' }, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.end();
    setTimeout(() => reject(new Error('no data')), 3000);
  });
}

t.test('response head: repeated headers, spelling and status text pass; hop-by-hop ones and those Connection lists do not', async (t) => {
  const { port } = await setup(t, (_req, res) => {
    res.statusMessage = 'Fine Thanks';
    res.writeHead(201, ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-App-Header', 'kept', 'Connection', 'x-internal', 'X-Internal', 'secret', 'Keep-Alive', 'timeout=5']);
    res.end('made');
  });
  const raw = await rawExchange(port, 'GET /x HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
  const head = raw.split('\r\n\r\n')[0] ?? '';
  t.match(head, /^HTTP\/1\.1 201 Fine Thanks\r\n/, 'status and its text');
  t.equal(head.match(/^Set-Cookie: /gm)?.length, 2, 'both cookies, as separate lines');
  t.match(head, /\r\nSet-Cookie: a=1\r\n/);
  t.match(head, /\r\nSet-Cookie: b=2\r\n/);
  t.match(head, /\r\nX-App-Header: kept\r\n/, 'the app’s spelling of a name');
  t.notMatch(head, /X-Internal/i, 'a header the app’s Connection listed is dropped');
  t.notMatch(head, /Keep-Alive: timeout=5/i, 'the app’s Keep-Alive is not ours');
  t.match(raw.slice(head.length), /\r\n\r\n(4\r\n)?made/, 'body');
});

t.test('request head: the client’s hop-by-hop headers and those its Connection lists stay with us; X-Forwarded-* are added', async (t) => {
  const { port, seen } = await setup(t);
  const raw = await rawExchange(port, 'GET /y HTTP/1.1\r\nHost: web.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\nX-End: 2\r\nX-End: 3\r\n\r\n', 300);
  t.match(raw, /^HTTP\/1\.1 200 /);
  const h = seen.at(-1)?.headers ?? {};
  t.equal(h.host, 'web.test', 'Host kept');
  t.equal(h['x-hop'], undefined, 'listed in Connection: dropped');
  t.equal(h.te, undefined);
  t.equal(h['x-end'], '2, 3', 'repeated end-to-end header kept (both values)');
  t.equal(h['x-forwarded-for'], '127.0.0.1');
  t.equal(h['x-forwarded-proto'], 'http');
  t.equal(h['x-forwarded-host'], 'web.test');
});

t.test('a chunked request body reaches the app whole, with a Content-Length', async (t) => {
  const { port, seen } = await setup(t);
  const raw = await rawExchange(port, 'POST /up HTTP/1.1\r\nHost: web.test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  t.match(raw, /^HTTP\/1\.1 200 /);
  t.equal(seen.at(-1)?.body, 'hello world');
  t.equal(seen.at(-1)?.headers['content-length'], '11');
  t.equal(seen.at(-1)?.headers['transfer-encoding'], undefined);
});

t.test('responses stream: the first event of a slow stream arrives before the app ends it', async (t) => {
  let finish: (() => void) | undefined;
  const { url } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    finish = () => res.end('data: last\n\n');
  });
  let rest: Promise<string> | undefined;
  const first = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(`${url}/events`, { headers: { host: 'web.test' }, agent: false }, (res) => {
      res.once('data', (c: Buffer) => {
        resolve(c.toString());
        rest = new Promise((done) => {
          let tail = '';
          res.on('data', (d: Buffer) => (tail += d.toString()));
          res.on('end', () => done(tail));
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(first, 'data: first\n\n', 'arrived while the app still holds the response open');
  t.ok(finish, 'the app had not ended the response');
  finish?.();
  t.equal(await rest, 'data: last\n\n', 'and the rest once it does');
});

t.test('an event stream that the app opens and keeps silent: its head reaches the client at once', async (t) => {
  let appClosed: Promise<void> | undefined;
  const { url } = await setup(t, (_req, res) => {
    appClosed = new Promise((resolve) => res.once('close', () => resolve()));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders(); // the head, then nothing: an EventSource is open and waits for events
  });
  const started = Date.now();
  const head = await new Promise<{ status: number | undefined; type: string | undefined; afterMs: number; bytes: number; req: ReturnType<typeof httpRequest> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no response head within 3 s')), 3000);
    const req = httpRequest(`${url}/events`, { headers: { host: 'web.test', accept: 'text/event-stream' }, agent: false }, (res) => {
      clearTimeout(timer);
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      setTimeout(() => resolve({ status: res.statusCode, type: res.headers['content-type'], afterMs: Date.now() - started, bytes, req }), 200);
    });
    req.on('error', () => undefined);
    req.end();
  });
  t.equal(head.status, 200);
  t.equal(head.type, 'text/event-stream');
  t.ok(head.afterMs < 2000, `the head arrived while the app sent no byte (${head.afterMs} ms)`);
  t.equal(head.bytes, 0, 'and no body byte');
  head.req.destroy();
  await appClosed;
});

t.test('a large response arrives whole through a slow reader (back-pressure, no loss)', async (t) => {
  const size = 16 << 20;
  const chunk = Buffer.alloc(64 << 10, 'z');
  const { url } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(size) });
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const received = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${url}/big`, { headers: { host: 'web.test' } }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        // Read slowly at first, so the proxy has to pause the app.
        if (n < 2 << 20) {
          res.pause();
          setTimeout(() => res.resume(), 2);
        }
      });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(received, size, `${size} bytes`);
});

t.test('HEAD, 204 and 304 answers pass without a body', async (t) => {
  const { url } = await setup(t, (req, res) => {
    if (req.url === '/none') return void res.writeHead(204).end();
    if (req.url === '/same') return void res.writeHead(304, { etag: '"v1"' }).end();
    res.writeHead(200, { 'content-length': '5', 'content-type': 'text/plain' });
    res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const head = await send(`${url}/h`, { method: 'HEAD', headers: { host: 'web.test' } });
  t.equal(head.status, 200);
  t.equal(head.header('content-length'), '5');
  t.equal(head.text(), '');
  t.equal((await send(`${url}/none`, { headers: { host: 'web.test' } })).status, 204);
  const same = await send(`${url}/same`, { headers: { host: 'web.test', 'if-none-match': '"v1"' } });
  t.equal(same.status, 304);
  t.equal(same.header('etag'), '"v1"');
});

t.test('an app that drops the connection before answering: 502 SA_UPSTREAM_ERROR, and the proxy carries on', async (t) => {
  const { url } = await setup(t, (req, res) => {
    if (req.url === '/drop') return void req.socket.destroy();
    res.end('fine');
  });
  const res = await send(`${url}/drop`, { headers: { host: 'web.test' } });
  t.equal(res.status, 502);
  t.equal(res.header('x-activator-error'), 'SA_UPSTREAM_ERROR');
  t.equal(res.json<{ message: string }>().message, 'app web: did not answer', 'a generic message: the socket error (with the task address, e.g. connect ECONNREFUSED 10.0.1.5:80 on a retried connection) stays in the log');
  t.notMatch(res.text(), /127\.0\.0\.1|socket|closed|ECONN/, 'the task address and the socket error are not shown to the client');
  t.equal((await send(`${url}/ok`, { headers: { host: 'web.test' } })).text(), 'fine', 'next request served');
});

t.test('an app that breaks off mid-response: the client’s response is cut, a warning is logged, the proxy carries on', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const { url } = await setup(
    t,
    (req, res) => {
      if (req.url !== '/cut') return void res.end('fine');
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 20);
    },
    pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
  );
  const outcome = await new Promise<string>((resolve) => {
    const req = httpRequest(`${url}/cut`, { headers: { host: 'web.test' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(`ended with ${body}`));
      res.on('error', () => resolve(`cut after ${body}`));
      res.on('aborted', () => resolve(`cut after ${body}`));
    });
    req.on('error', (e) => resolve(`error ${e.message}`));
    req.end();
  });
  t.equal(outcome, 'cut after partial', 'the client sees a truncated response, not a complete one');
  await new Promise((r) => setTimeout(r, 20));
  t.ok(lines.some((l) => l.level === 40 && /broke off/.test(String(l.msg)) && l.app === 'web'), 'warning names the app');
  t.equal((await send(`${url}/ok`, { headers: { host: 'web.test' } })).text(), 'fine', 'next request served');
});

t.test('a client that leaves during a long response: the app’s side is closed too', async (t) => {
  let appSideClosed: Promise<void> | undefined;
  const { url, traffic } = await setup(t, (_req, res) => {
    appSideClosed = new Promise((resolve) => res.once('close', () => resolve()));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('tick');
  });
  await leaveAfterFirstChunk(`${url}/long`);
  await Promise.race([appSideClosed, new Promise((_, reject) => setTimeout(() => reject(new Error('app side still open after 2 s')), 2000))]);
  t.pass('the app saw its response closed');
  await new Promise((r) => setTimeout(r, 20));
  t.equal(traffic.open('web'), 0, 'no open work left');
});

t.test('response trailers are passed on', async (t) => {
  const { url } = await setup(t, (_req, res) => {
    res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
    res.write('data');
    res.addTrailers({ 'x-checksum': 'abc' });
    res.end();
  });
  const trailers = await new Promise<Record<string, string | undefined>>((resolve, reject) => {
    const req = httpRequest(`${url}/t`, { headers: { host: 'web.test' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.trailers));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(trailers['x-checksum'], 'abc');
});

t.test('informational answers: 103 Early Hints pass on as hints, then the real response arrives whole', async (t) => {
  const { url } = await setup(t, (_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello');
  });
  const got = await new Promise<{ hints: string[]; status: number; body: string }>((resolve, reject) => {
    const hints: string[] = [];
    const req = httpRequest(`${url}/page`, { headers: { host: 'web.test' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ hints, status: res.statusCode ?? 0, body }));
    });
    req.on('information', (info) => {
      if (info.statusCode === 103) hints.push(String(info.headers.link));
    });
    req.on('error', reject);
    req.end();
  });
  t.same(got.hints, ['</style.css>; rel=preload; as=style'], 'the Link hint');
  t.equal(got.status, 200);
  t.equal(got.body, 'hello');
});

t.test('a client that closes a stream is not logged as the app breaking off', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  let appSideClosed: Promise<void> | undefined;
  const { url } = await setup(
    t,
    (_req, res) => {
      appSideClosed = new Promise((resolve) => res.once('close', () => resolve()));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
    },
    pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
  );
  await leaveAfterFirstChunk(`${url}/events`);
  await appSideClosed;
  await new Promise((r) => setTimeout(r, 50));
  t.same(lines, [], 'no warning');
});

t.test('a trailer byte outside ASCII passes as the app sent it', async (t) => {
  const { url } = await setup(t, (_req, res) => {
    res.writeHead(200, { trailer: 'x-sig', 'content-type': 'text/plain' });
    res.write('data');
    res.addTrailers({ 'x-sig': 'caf\u00e9' }); // written by Node as latin1 byte 0xE9
    res.end();
  });
  const got = await new Promise<{ body: string; rawTrailers: string[]; trailerHeader: string | undefined }>((resolve, reject) => {
    const req = httpRequest(`${url}/t`, { headers: { host: 'web.test' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ body, rawTrailers: res.rawTrailers, trailerHeader: res.headers.trailer }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(got.body, 'data', 'body whole');
  t.equal(got.trailerHeader, 'x-sig', 'the Trailer header is end-to-end: kept');
  t.same(got.rawTrailers, ['x-sig', 'caf\u00e9']);
});

t.test('a GET with a body (search APIs) reaches the app with its body', async (t) => {
  const { url, seen } = await setup(t);
  const res = await send(`${url}/_search`, { method: 'GET', headers: { host: 'web.test', 'content-type': 'application/json' }, body: '{"query":{"match_all":{}}}' });
  t.equal(res.status, 200);
  t.equal(seen.at(-1)?.method, 'GET');
  t.equal(seen.at(-1)?.body, '{"query":{"match_all":{}}}');
});

t.test('request targets: absolute-form becomes origin-form; one undici cannot send is a 400, not a 502', async (t) => {
  const { port, seen } = await setup(t);
  const abs = await rawExchange(port, 'GET http://web.test/abs?x=1 HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
  t.match(abs, /^HTTP\/1\.1 200 /);
  t.equal(seen.at(-1)?.url, '/abs?x=1');
  const star = await rawExchange(port, 'OPTIONS * HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
  t.match(star, /^HTTP\/1\.1 400 /);
  t.match(star, /x-activator-error: SA_BAD_REQUEST/i);
});

/** In 300 ms, what Swarm does when it marks web's node down: the old task is to shut down, a new one runs. */
function loseTaskSoon(swarm: MemorySwarm, then: () => void): void {
  setTimeout(() => {
    const tasks = swarm.tasks.get('id-web') ?? [];
    for (const task of tasks) task.desiredState = 'shutdown';
    tasks.push({ ...(tasks[0] as TaskInfo), id: `task-web-${tasks.length}`, state: 'running', desiredState: 'running' });
    then();
  }, 300);
}

t.test('a task lost with a request in flight (its node gone: no answer, no reset): idempotent requests go to the new task, others get 502', async (t) => {
  let released = false;
  const { url, swarm } = await setup(t, (req, res) => {
    if (req.url === '/hang' && !released) return; // the lost node: never answers
    res.end(`ok ${req.method}`);
  });
  const lose = () => loseTaskSoon(swarm, () => (released = true));
  lose();
  const get = await send(`${url}/hang`, { headers: { host: 'web.test' } });
  t.equal(get.status, 200, 'the GET was sent again, to the new task');
  t.equal(get.text(), 'ok GET');

  released = false;
  lose();
  const post = await send(`${url}/hang`, { method: 'POST', headers: { host: 'web.test', 'content-type': 'text/plain' }, body: 'pay' });
  t.equal(post.status, 502, 'a POST is not sent twice');
  t.equal(post.header('x-activator-error'), 'SA_UPSTREAM_ERROR');
  t.match(post.json<{ message: string }>().message, /task was lost while a POST was in flight/);
});

/** A raw upgrade request on its own connection; resolves with everything the activator sent back. */
function rawUpgrade(url: string, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(Number(url.split(':')[2]), '127.0.0.1', () => {
      const lines = [`GET ${path} HTTP/1.1`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    let data = '';
    sock.on('data', (c) => (data += c.toString()));
    sock.on('close', () => resolve(data));
    setTimeout(() => sock.destroy(), 3000);
  });
}

t.test('WebSocket: an uptime monitor gets the cheap answer, as for HTTP: no wake, no tunnel, no activity', async (t) => {
  const { url, swarm, traffic, metrics } = await setup(t, undefined, log, { monitorUserAgents: /Uptime-Kuma/, asleep: true });
  const asleep = await rawUpgrade(url, '/chat', { Host: 'web.test', 'User-Agent': 'Uptime-Kuma/1.23' });
  t.match(asleep, /^HTTP\/1\.1 200 /, 'answered by the activator itself');
  t.match(asleep, /x-activator-state: asleep/i);
  t.match(asleep, /\r\n\r\nasleep\n$/);
  t.notOk(swarm.calls.some((c) => c.startsWith('scale ')), 'the app was not woken');
  t.equal(traffic.open('web'), 0, 'no activity');
  t.same((await metrics.monitorRequests.get()).values.map((v) => [v.labels.app, v.value]), [['web', 1]]);

  // Anyone else's upgrade wakes the app and gets its tunnel.
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`${url.replace('http', 'ws')}/chat`, { headers: { host: 'web.test' } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  t.ok(swarm.calls.includes('scale web 1'), 'a user’s upgrade wakes it');
  ws.close();
  const awake = await rawUpgrade(url, '/chat', { Host: 'web.test', 'User-Agent': 'Uptime-Kuma/1.23' });
  t.match(awake, /^HTTP\/1\.1 200 [^]*x-activator-state: /i, 'awake now, and still answered by the activator, not tunnelled');
});

t.test('WebSocket: an upgrade whose task is lost before it answers goes to the new task', async (t) => {
  let released = false;
  const { url, swarm } = await setup(t, undefined, log, { ignoreUpgrade: (req) => req.url === '/hang' && !released });
  loseTaskSoon(swarm, () => (released = true));
  const { default: WebSocket } = await import('ws');
  const started = Date.now();
  const ws = new WebSocket(`${url.replace('http', 'ws')}/hang`, { headers: { host: 'web.test' }, handshakeTimeout: 10_000 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  t.ok(Date.now() - started < 9000, `the upgrade was sent again after the task check (${Date.now() - started} ms)`);
  const echoed = await new Promise<string>((resolve) => {
    ws.once('message', (m) => resolve((m as Buffer).toString()));
    ws.send('still there');
  });
  t.equal(echoed, 'still there', 'the tunnel goes to the new task');
});

t.test('requests that arrive while the proxy closes get 503 SA_SHUTTING_DOWN from the error table', async (t) => {
  let first: (() => void) | undefined;
  const { url, app } = await setup(t, (req, res) => {
    if (req.url === '/slow') first = () => res.end('slow done');
    else res.end('ok');
  });
  const sock = connect(Number(url.split(':')[2]), '127.0.0.1');
  let data = '';
  sock.on('data', (c) => (data += c.toString()));
  const closedSock = new Promise((resolve) => sock.once('close', resolve));
  sock.write('GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n');
  while (!first) await new Promise((r) => setTimeout(r, 10));
  const closing = app.close();
  await new Promise((r) => setTimeout(r, 50));
  // A pipelined request on the busy keep-alive connection reaches the chain during the close.
  sock.write('GET /after HTTP/1.1\r\nHost: web.test\r\nAccept: application/json\r\n\r\n');
  await new Promise((r) => setTimeout(r, 50));
  first();
  await Promise.race([closedSock, new Promise((r) => setTimeout(r, 3000))]);
  sock.destroy();
  await closing;
  t.match(data, /^HTTP\/1\.1 200 [^]*slow done/, 'the request in flight is served');
  const second = data.slice(data.indexOf('slow done'));
  t.match(second, /HTTP\/1\.1 503 /);
  t.match(second, /x-activator-error: SA_SHUTTING_DOWN/i);
  t.match(second, /retry-after: 5/i);
  t.match(second, /"error":"SA_SHUTTING_DOWN"/);
});
