/**
 * WebSocket (any HTTP Upgrade): the request chain (chain.ts) as for any request, then its own last
 * step, a byte-for-byte tunnel to the task, as Traefik does. Frames are not re-encoded, so
 * subprotocols and extensions pass through untouched. The connection counts as activity for as
 * long as it is open.
 */
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppEntry } from '../discovery/app-registry.js';
import { ActivatorError, asActivatorError } from '../errors.js';
import { LOST_TASK_CHECK_EVERY_MS, lostTaskCheck, sendWithRetries, type AttemptTarget } from './attempts.js';
import type { Answers } from './answers.js';
import { readyEndpoint, runChain, type ChainContext, type Exchange } from './chain.js';
import type { RenderedAnswer } from './error-page.js';
import { headersForApp, type TrustedPeers } from './forwarding.js';
import { ForwardError } from './upstream.js';

export interface WebSocketDeps {
  chain: ChainContext;
  answers: Answers;
  trusted: TrustedPeers;
  log: Logger;
  /** Bytes a client may send before its upgrade is answered (kept for the app meanwhile). */
  maxEarlyBytes: number;
}

export function attachWebSocketProxy(app: FastifyInstance, d: WebSocketDeps): void {
  const log = d.log.child({ module: 'websocket' });
  // Upgraded sockets are never idle: close them ourselves, or the server's close would wait forever.
  const tunnels = new Set<Duplex>();
  app.addHook('preClose', async () => {
    for (const socket of tunnels) socket.destroy();
  });

  const fail = (socket: Duplex, req: IncomingMessage, err: unknown) => writeAnswer(socket, d.answers.problem(err, requestLine(req), log, true));

  async function handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const x: Exchange = { req, headers: req.headers, method: req.method ?? 'GET', url: req.url ?? '/', upgrade: true, conn: socket, entry: undefined };
    const outcome = runChain(x, d.chain);
    if (outcome.kind !== 'routed') return writeAnswer(socket, await d.answers.render(outcome, x, log, true));
    const entry = outcome.entry;
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    const early = stashEarlyBytes(socket, head, d.maxEarlyBytes, () => fail(socket, req, new ActivatorError('SA_BAD_REQUEST', `sent more than ${d.maxEarlyBytes} bytes before the upgrade was answered`, entry.policy.service)));

    const endpoint = await readyEndpoint(socket, outcome);
    const gone = () => socket.destroyed || !socket.writable; // the client left, or was refused (too many early bytes)
    if (!endpoint || gone()) return;
    await sendWithRetries({
      coordinator: d.chain.coordinator,
      log,
      entry,
      method: x.method,
      url: x.url,
      first: { endpoint, wake: outcome.wake },
      didNotAnswer: 'WebSocket upgrade failed: the app did not answer',
      clientGone: gone,
      attempt: (target) => (gone() ? Promise.resolve() : tunnel(d, req, socket, early, entry, target)),
    });
  }

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err }, 'client socket error'));
    handle(req, socket, head).catch((err: unknown) => {
      if (socket.destroyed) return;
      fail(socket, req, asActivatorError(err));
    });
  });
}

function requestLine(req: IncomingMessage): { headers: IncomingMessage['headers']; method: string; url: string } {
  return { headers: req.headers, method: req.method ?? 'GET', url: req.url ?? '/' };
}

/** An answer of the activator's own on the raw socket, then the connection closes. */
function writeAnswer(socket: Duplex, a: RenderedAnswer): void {
  if (!socket.writable) return void socket.destroy();
  const head = [`HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? ''}`];
  for (const [name, value] of Object.entries(a.headers)) head.push(`${name}: ${value}`);
  head.push(`Content-Length: ${Buffer.byteLength(a.body)}`, 'Connection: close');
  socket.end(`${head.join('\r\n')}\r\n\r\n${a.body}`);
}

/**
 * Reads the client's socket while held: a client's FIN is only noticed on a flowing socket, and
 * anything it sends early must reach the app after the upgrade, in order. Bounded: one connection
 * sending 500 MB before its upgrade was answered once grew the activator by 500 MB.
 */
function stashEarlyBytes(socket: Duplex, head: Buffer, maxBytes: number, refuse: () => void): EarlyBytes {
  const early: EarlyBytes = { chunks: [head], stop: () => socket.off('data', stash) };
  let bytes = head.length;
  function stash(chunk: Buffer): void {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      early.stop();
      early.chunks.length = 0;
      socket.pause();
      refuse();
      // No lingering: whatever else it sends is not read.
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    early.chunks.push(chunk);
  }
  socket.on('data', stash);
  socket.once('end', () => socket.destroy());
  return early;
}

interface EarlyBytes {
  chunks: Buffer[];
  stop(): void;
}

/**
 * One attempt: the upgrade request to the task; on 101 the two sockets are piped, on any other
 * answer the app's response is relayed. Rejects with a ForwardError when the app did not answer,
 * also when its task was lost while the upgrade waited (checked as for HTTP requests).
 */
function tunnel(d: WebSocketDeps, req: IncomingMessage, socket: Duplex, early: EarlyBytes, entry: AppEntry, target: AttemptTarget): Promise<void> {
  const { endpoint } = target;
  return new Promise((resolve, reject) => {
    let answered = false;
    const upstream = httpRequest({
      host: endpoint.ip,
      port: endpoint.port,
      method: req.method,
      path: req.url,
      headers: headersForApp(req, d.trusted, true),
      setHost: false,
      agent: false,
    });
    const dropUpstream = () => upstream.destroy();
    socket.once('close', dropUpstream);
    const lostTask = watchForLostTask(lostTaskCheck(d.chain.coordinator, entry, endpoint), (err) => upstream.destroy(err));
    const onAnswer = () => {
      answered = true;
      lostTask.stop();
      resolve();
    };
    upstream.on('upgrade', (res, upSocket, upHead) => {
      onAnswer();
      if (socket.destroyed) return void upSocket.destroy();
      const lines = [`HTTP/1.1 ${res.statusCode ?? 101} ${res.statusMessage ?? 'Switching Protocols'}`];
      for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      early.stop();
      for (const chunk of early.chunks) if (chunk.length > 0) upSocket.write(chunk);
      upSocket.on('error', () => socket.destroy());
      socket.on('error', () => upSocket.destroy());
      upSocket.once('close', () => socket.destroy());
      socket.once('close', () => upSocket.destroy());
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });
    upstream.on('response', (res) => {
      // The app declined the upgrade: relay its answer. The body arrives de-chunked, so drop the
      // framing headers and let the close delimit it.
      onAnswer();
      const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage}`];
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const name = String(res.rawHeaders[i]).toLowerCase();
        if (name === 'transfer-encoding' || name === 'connection' || name === 'keep-alive') continue;
        lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      }
      lines.push('Connection: close');
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      res.pipe(socket);
    });
    upstream.on('error', (err) => {
      lostTask.stop();
      socket.off('close', dropUpstream);
      if (answered) return void socket.destroy(); // mid-answer: no second HTTP response on this socket
      // Not answered: the upgrade did not happen, so it may be sent again (attempts.ts decides).
      reject(new ForwardError(err, false));
    });
    upstream.end();
  });
}

/** While an upgrade waits for the app's answer, its task is checked every LOST_TASK_CHECK_EVERY_MS. */
function watchForLostTask(check: () => Promise<Error | undefined>, abort: (err: Error) => void): { stop(): void } {
  let checking = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    check().then(
      (err) => {
        checking = false;
        if (err && !stopped) abort(err);
      },
      () => {
        checking = false; // Docker did not answer: ask again next period
      },
    );
  }, LOST_TASK_CHECK_EVERY_MS).unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
