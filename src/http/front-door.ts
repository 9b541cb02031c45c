/**
 * The proxy's HTTP server, with unknown Hosts answered at its door, before fastify. Scanners and
 * bots are much of what reaches an exposed activator, and for them fastify's request and reply
 * objects were most of a 404's cost (docs/performance.md, scale). The answer is the chain's own
 * (its Host step, the error table, the problem log: app.ts); every other request, and every
 * request during shutdown, goes on to fastify and the whole chain. fastify's inject() bypasses the
 * server, and there the chain's Host step gives the same answer.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { RenderedAnswer } from './error-page.js';

/** The answer for a request that goes no further than the door, or undefined to pass it on. */
export type DoorAnswer = (req: IncomingMessage, res: ServerResponse) => RenderedAnswer | undefined;

export interface FrontDoorOptions {
  http: ServerOptions;
  /** What fastify sets on a server it makes itself (fastify/lib/server.js, getServerInstance). */
  keepAliveTimeoutMs: number;
  requestTimeoutMs: number;
}

/** An http.Server for fastify's serverFactory: `answer` first, then fastify's handler. */
export function frontDoorServer(fastifyHandler: RequestListener, answer: DoorAnswer, opts: FrontDoorOptions): Server {
  const server = createServer(opts.http, (req, res) => {
    const answered = answer(req, res);
    if (!answered) return void fastifyHandler(req, res);
    // renderProblem made this headers object for this answer alone: no copy needed.
    answered.headers['content-length'] = String(Buffer.byteLength(answered.body));
    res.writeHead(answered.status, answered.headers);
    res.end(answered.body);
  });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  server.requestTimeout = opts.requestTimeoutMs;
  return server;
}
