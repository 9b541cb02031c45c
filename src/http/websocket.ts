/**
 * WebSocket (any HTTP Upgrade) proxying: hold until the app is ready, then a byte-for-byte tunnel
 * to the task, as Traefik does. Frames are not re-encoded, so subprotocols and extensions pass
 * through untouched. The connection counts as activity for as long as it is open.
 */
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ActivatorError, UnknownHostError, UpstreamError, WakeTimeoutError, asActivatorError } from '../errors.js';
import type { Endpoint } from '../wake/readiness.js';
import type { HttpDeps } from './app.js';
import { toProblem } from './error-page.js';
import { headersForApp, isRetryableConnectError, type TrustedPeers } from './forwarding.js';
import type { HoldGate } from './hold.js';
import type { ProblemLog } from './problem-log.js';

export interface WebSocketBounds {
  holds: HoldGate;
  problemLog: ProblemLog;
  trusted: TrustedPeers;
  /** Bytes a client may send before its upgrade is answered (kept for the app meanwhile). */
  maxEarlyBytes: number;
  /** A held upgrade waits at most its app's wake timeout plus this. */
  holdGraceMs: number;
}

export function attachWebSocketProxy(app: FastifyInstance, deps: HttpDeps, bounds: WebSocketBounds): void {
  const { holds, problemLog, trusted } = bounds;
  const log = deps.log.child({ module: 'websocket' });
  const { registry, coordinator, traffic, config } = deps;
  // Upgraded sockets are never idle: close them ourselves, or the server's close would wait forever.
  const tunnels = new Set<Duplex>();
  app.addHook('preClose', async () => {
    for (const socket of tunnels) socket.destroy();
  });

  function fail(socket: Duplex, err: unknown, req: IncomingMessage): void {
    const p = toProblem(err, config.retryAfterSeconds);
    problemLog.write(log, p, { host: req.headers.host, method: req.method, url: req.url, upgrade: true });
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify({ error: p.code, status: p.status, message: p.message });
    const head = [
      `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? ''}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `X-Activator-Error: ${p.code}`,
      ...(p.retryAfterSeconds !== undefined ? [`Retry-After: ${p.retryAfterSeconds}`] : []),
      'Connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  }

  async function handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const entry = registry.byHost(req.headers.host);
    if (!entry || !entry.policy.http) return fail(socket, new UnknownHostError(req.headers.host ?? ''), req);
    const refused = deps.routeGuard?.(entry, req.headers);
    if (refused) return fail(socket, refused, req);
    const service = entry.policy.service;
    const endTraffic = traffic.begin(service);
    socket.once('close', endTraffic);
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));

    // Read while held: a client's FIN is only noticed on a flowing socket, and anything it sends
    // early must reach the app after the upgrade, in order. Bounded: one connection sending
    // 500 MB before its upgrade was answered once grew the activator by 500 MB.
    const early: Buffer[] = [head];
    let earlyBytes = head.length;
    const stash = (chunk: Buffer) => {
      earlyBytes += chunk.length;
      if (earlyBytes > bounds.maxEarlyBytes) {
        socket.off('data', stash);
        early.length = 0;
        socket.pause();
        fail(socket, new ActivatorError('SA_BAD_REQUEST', `sent more than ${bounds.maxEarlyBytes} bytes before the upgrade was answered`, service), req);
        // No lingering: whatever else it sends is not read.
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      early.push(chunk);
    };
    socket.on('data', stash);
    socket.once('end', () => socket.destroy());

    const connect = async (attempt: number): Promise<void> => {
      let endpoint: Endpoint | undefined = coordinator.endpointFor(service);
      if (!endpoint) {
        const release = holds.acquire(service);
        const gone = new AbortController();
        const onClose = () => gone.abort(new Error('client went away while held'));
        socket.once('close', onClose);
        const holdTimer = setTimeout(() => gone.abort(new WakeTimeoutError(service, entry.policy.wakeTimeoutMs, 'the held upgrade waited its limit')), entry.policy.wakeTimeoutMs + bounds.holdGraceMs);
        try {
          endpoint = await coordinator.ensureReady(entry, gone.signal, `WebSocket for ${req.headers.host}`);
        } finally {
          clearTimeout(holdTimer);
          release();
          socket.off('close', onClose);
        }
      }
      if (socket.destroyed || !socket.writable) return; // the client left, or was refused (too many early bytes)
      const target = endpoint;
      let answered = false;
      const upstream = httpRequest({
        host: target.ip,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: headersForApp(req, trusted, true),
        setHost: false,
        agent: false,
      });
      const dropUpstream = () => upstream.destroy();
      socket.once('close', dropUpstream);
      upstream.on('upgrade', (res, upSocket, upHead) => {
        answered = true;
        if (socket.destroyed) return void upSocket.destroy();
        const lines = [`HTTP/1.1 ${res.statusCode ?? 101} ${res.statusMessage ?? 'Switching Protocols'}`];
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upHead.length > 0) socket.write(upHead);
        socket.off('data', stash);
        for (const chunk of early) if (chunk.length > 0) upSocket.write(chunk);
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
        answered = true;
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
        socket.off('close', dropUpstream);
        if (answered) return void socket.destroy(); // mid-answer: no second HTTP response on this socket
        if (attempt === 0 && isRetryableConnectError(err)) {
          coordinator.invalidate(service, target);
          connect(1).catch((e: unknown) => fail(socket, asActivatorError(e, service), req));
          return;
        }
        fail(socket, new UpstreamError(service, 'WebSocket upgrade failed: the app did not answer', { cause: err, detail: `upstream ${target.ip}:${target.port}: ${err.message}` }), req);
      });
      upstream.end();
    };

    await connect(0);
  }

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err }, 'client socket error'));
    handle(req, socket, head).catch((err: unknown) => {
      if (socket.destroyed) return;
      fail(socket, asActivatorError(err), req);
    });
  });
}
