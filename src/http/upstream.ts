/**
 * One request to a task over undici's Agent (a keep-alive Pool per task address). The app's
 * response goes straight into Node's ServerResponse from undici's dispatch handler: no Readable in
 * between and no per-request header objects beyond the one copy. @fastify/reply-from did the same
 * job through three header copies, a URL cache and fastify's stream plumbing, and held the hot path
 * at 0.77–0.86 of a bare undici proxy (docs/performance.md); this runs at or above it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { headersForClient } from './forwarding.js';

export interface UpstreamTarget {
  ip: string;
  port: number;
}

export interface ForwardOptions {
  /** Request headers for the app, as a flat name/value list (forwarding.ts). */
  headers: string[];
  /** The buffered request body; null for none. */
  body: Buffer | null;
  /** Extra response headers, as name/value pairs (the cold-start marker). */
  extraResponseHeaders?: readonly string[];
  /** The app failed after its response head was sent: the client's response is cut off. */
  onLateError?: (err: Error) => void;
}

/** Kept for the life of a task's connections; Agent drops a Pool once its sockets are gone. */
export interface UpstreamOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
}

export class Upstream {
  private readonly agent: Agent;

  constructor(opts: UpstreamOptions) {
    this.agent = new Agent({
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      // The app sets its own pace (long polls, slow reports, SSE); Traefik has the timeouts.
      headersTimeout: 0,
      bodyTimeout: 0,
      // Short: a vanished task should fail fast into the re-wake path.
      connect: { timeout: opts.connectTimeoutMs },
    });
  }

  /**
   * Resolves once the app's response head has been written to the client. Rejects when the app
   * failed before that; then nothing has been written and the caller answers (or retries).
   */
  forward(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, opts: ForwardOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.agent.dispatch(
        {
          origin: `http://${target.ip}:${target.port}`,
          path: req.url ?? '/',
          method: req.method as Dispatcher.HttpMethod,
          headers: opts.headers,
          body: opts.body,
        },
        new ResponseWriter(res, opts, resolve, reject),
      );
    });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** undici's (native, unwrapped) handler interface, writing to the client's response as bytes arrive. */
class ResponseWriter implements Dispatcher.DispatchHandler {
  private resume: (() => void) | undefined;
  private waitingForDrain = false;
  private readonly onDrain = () => {
    this.waitingForDrain = false;
    this.resume?.();
  };

  constructor(
    private readonly res: ServerResponse,
    private readonly opts: ForwardOptions,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    if (this.res.destroyed) return abort(new Error('client went away'));
    // The client left: stop reading from the app too (and free the connection for others).
    this.res.once('close', () => {
      if (!this.res.writableFinished) abort(new Error('client went away'));
    });
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.resume = resume;
    const headers = headersForClient(rawHeaders);
    if (this.opts.extraResponseHeaders) headers.push(...this.opts.extraResponseHeaders);
    // Throws on a head Node refuses to write (bad status text, say): undici then calls onError, before anything was sent.
    if (statusText) this.res.writeHead(statusCode, statusText, headers);
    else this.res.writeHead(statusCode, headers);
    this.resolve();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      this.res.once('drain', this.onDrain);
    }
    return false;
  }

  onComplete(trailers: string[] | null): void {
    if (trailers && trailers.length > 0) this.res.addTrailers(pairs(trailers));
    this.res.end();
  }

  onError(err: Error): void {
    if (!this.res.headersSent) return this.reject(err);
    this.res.destroy(err);
    this.opts.onLateError?.(err);
  }
}

function pairs(flat: ReadonlyArray<string | Buffer>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([String(flat[i]), String(flat[i + 1])]);
  return out;
}
