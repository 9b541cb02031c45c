// Sample upstream app for tests and the demo (plain ESM, runs on node 20 in local/node-base:20).
//
// Env: PORT (default 80), STARTUP_DELAY_MS (default 0: wait this long before listen()),
//      LOG_REQUESTS=1 (one "request METHOD URL" line per request head received).
//
//   GET /health        -> 200 "ok"
//   ANY /status/<code> -> that status code
//   GET /sse           -> text/event-stream, "data: tick\n\n" every 500 ms until the client goes away
//   GET /sse/silent    -> text/event-stream headers (x-remote-address: who connected), then nothing
//                         until the client goes away (a long-lived connection that moves no bytes)
//   WebSocket upgrade on any path -> echoes every message back unchanged (sends nothing on connect),
//                         except /whoami: first sends {"remoteAddress": who connected}, then echoes
//   anything else      -> 200 JSON echo:
//       { method, path, url, query, headers, body, bodyBytes, hostname, pid, startedAt, remoteAddress }
//       (remoteAddress: who connected, e.g. Traefik's task or the activator's; IPv4 unmapped)
//
// SIGTERM/SIGINT: stop listening, drop open connections, exit 0 right away.
import http from 'node:http';
import os from 'node:os';
import { WebSocketServer } from 'ws';

const PORT = Number.parseInt(process.env.PORT ?? '', 10) || 80;
const STARTUP_DELAY_MS = Math.max(0, Number.parseInt(process.env.STARTUP_DELAY_MS ?? '', 10) || 0);
const startedAt = new Date().toISOString();
const hostname = os.hostname();

const log = (msg) => process.stdout.write(`${new Date().toISOString()} sample-app[${process.pid}] ${msg}\n`);

const sseClients = new Set();

function queryObject(searchParams) {
  const out = {};
  for (const [k, v] of searchParams) {
    if (!Object.hasOwn(out, k)) out[k] = v;
    else if (Array.isArray(out[k])) out[k].push(v);
    else out[k] = [out[k], v];
  }
  return out;
}

/** Who connected (Traefik's task, the activator's), IPv4 unmapped. */
function remoteAddressOf(req) {
  return req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
}

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'content-type': type, 'content-length': buf.length });
  res.end(buf);
}

const LOG_REQUESTS = process.env.LOG_REQUESTS === '1';

const server = http.createServer((req, res) => {
  if (LOG_REQUESTS) log(`request ${req.method} ${req.url}`);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;

  if (req.method === 'GET' && path === '/health') {
    req.resume();
    return send(res, 200, 'ok');
  }

  const statusMatch = /^\/status\/(\d{3})\/?$/.exec(path);
  if (statusMatch) {
    req.resume();
    const code = Number(statusMatch[1]);
    if (code < 200 || code > 599) return send(res, 400, `bad status code ${code}\n`);
    if (code === 204 || code === 304) {
      res.writeHead(code);
      return res.end();
    }
    return send(res, code, `status ${code}\n`);
  }

  if (req.method === 'GET' && path === '/sse/silent') {
    req.resume();
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-remote-address': remoteAddressOf(req),
    });
    res.flushHeaders();
    const entry = { res, timer: undefined };
    sseClients.add(entry);
    res.on('close', () => sseClients.delete(entry));
    return;
  }

  if (req.method === 'GET' && path === '/sse') {
    req.resume();
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    const timer = setInterval(() => res.write('data: tick\n\n'), 500);
    const entry = { res, timer };
    sseClients.add(entry);
    const stop = () => {
      clearInterval(timer);
      sseClients.delete(entry);
    };
    res.on('close', stop); // (not req 'close': that fires as soon as the empty request body is read)
    return;
  }

  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('error', () => {});
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const echo = {
      method: req.method,
      path,
      url: req.url,
      query: queryObject(url.searchParams),
      headers: req.headers,
      body: body.toString('utf8'),
      bodyBytes: body.length,
      hostname,
      pid: process.pid,
      startedAt,
      remoteAddress: remoteAddressOf(req),
    };
    send(res, 200, JSON.stringify(echo), 'application/json; charset=utf-8');
  });
});

const wss = new WebSocketServer({ noServer: true });
wss.on('connection', (ws, req) => {
  if (new URL(req.url ?? '/', 'http://localhost').pathname === '/whoami') ws.send(JSON.stringify({ remoteAddress: remoteAddressOf(req) }));
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: shutting down`);
  server.close();
  for (const ws of wss.clients) ws.terminate();
  for (const { res, timer } of sseClients) {
    clearInterval(timer);
    res.destroy();
  }
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

function listen() {
  server.listen(PORT, () => log(`listening on :${PORT} (hostname ${hostname})`));
}
if (STARTUP_DELAY_MS > 0) {
  log(`waiting ${STARTUP_DELAY_MS} ms before listening`);
  setTimeout(listen, STARTUP_DELAY_MS);
} else {
  listen();
}
