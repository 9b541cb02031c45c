/**
 * One request to a task over undici's Agent (a keep-alive Pool per task address). The app's
 * response goes straight into Node's ServerResponse from undici's dispatch handler: no Readable in
 * between and no per-request header objects beyond the one copy. @fastify/reply-from did the same
 * job through three header copies, a URL cache and fastify's stream plumbing, and held the hot path
 * at 0.77–0.86 of a bare undici proxy (docs/performance.md); this runs at or above it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { headersForClient } from './forwarding.js';

export interface UpstreamTarget {
  ip: string;
  port: number;
}

export interface ForwardOptions {
  /** Request headers for the app, as a flat name/value list (forwarding.ts). */
  headers: string[];
  /** The buffered request body, the request itself (a GET with a body streams through), or null. */
  body: Buffer | Readable | null;
  /** Extra response headers, as name/value pairs (the cold-start marker). */
  extraResponseHeaders?: readonly string[];
  /** The app failed after its response head was sent: the client's response is cut off. */
  onLateError?: (err: Error) => void;
  /**
   * While the app has not answered, asked every `everyMs` whether to give up: an Error aborts
   * the request with it (a lost task), undefined keeps waiting. Only slow requests pay for it.
   */
  watchdog?: { everyMs: number; check: () => Promise<Error | undefined> };
}

/** Kept for the life of a task's connections; Agent drops a Pool once its sockets are gone. */
export interface UpstreamOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
}

/** The app did not answer. `written`: the request may have reached it, so it must not be sent again. */
export class ForwardError extends Error {
  override readonly name = 'ForwardError';
  constructor(
    readonly error: Error,
    readonly written: boolean,
  ) {
    super(error.message, { cause: error });
  }
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
   * Resolves once the app's response head has been written to the client. Rejects with a
   * ForwardError when the app failed before that; then nothing has been written to the client
   * and the caller answers (or, if the request was never written to the app, retries).
   */
  forward(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, opts: ForwardOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.agent.dispatch(
        {
          origin: `http://${target.ip}:${target.port}`,
          path: originForm(req.url ?? '/'),
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
  /** onConnect ran: undici is writing the request to a socket, so the app may see it. */
  private written = false;
  private clientLeft = false;
  private watchTimer: NodeJS.Timeout | undefined;
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
    this.written = true;
    const clientGone = () => {
      this.clientLeft = true;
      abort(new Error('client went away'));
    };
    if (this.res.destroyed) return clientGone();
    // The client left: stop reading from the app too (and free the connection for others).
    this.res.once('close', () => {
      if (!this.res.writableFinished) clientGone();
    });
    const watchdog = this.opts.watchdog;
    if (watchdog) {
      const tick = () => {
        watchdog.check().then(
          (giveUp) => {
            if (this.watchTimer === undefined) return; // answered meanwhile
            if (giveUp) abort(giveUp);
            else this.watchTimer = setTimeout(tick, watchdog.everyMs);
          },
          () => {
            if (this.watchTimer !== undefined) this.watchTimer = setTimeout(tick, watchdog.everyMs);
          },
        );
      };
      this.watchTimer = setTimeout(tick, watchdog.everyMs);
    }
  }

  private stopWatching(): void {
    if (this.watchTimer === undefined) return;
    clearTimeout(this.watchTimer);
    this.watchTimer = undefined;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      // Informational (102, 103): not the response. Early hints' Link headers go on to the client.
      if (statusCode === 103) this.earlyHints(rawHeaders);
      return true;
    }
    this.stopWatching();
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

  onComplete(trailers: ReadonlyArray<string | Buffer> | null): void {
    if (trailers && trailers.length > 0) {
      try {
        this.res.addTrailers(latin1Pairs(trailers));
      } catch (err) {
        // A trailer Node refuses to write: the body is already out, so say so and end cleanly.
        this.opts.onLateError?.(err as Error);
      }
    }
    this.res.end();
  }

  onError(err: Error): void {
    this.stopWatching();
    if (!this.res.headersSent) return this.reject(new ForwardError(err, this.written));
    this.res.destroy();
    // A client that left is not the app's failure.
    if (!this.clientLeft) this.opts.onLateError?.(err);
  }

  private earlyHints(rawHeaders: Buffer[]): void {
    const links: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if ((rawHeaders[i] as Buffer).toString('latin1').toLowerCase() === 'link') links.push((rawHeaders[i + 1] as Buffer).toString('latin1'));
    }
    if (links.length > 0 && !this.res.headersSent) {
      try {
        this.res.writeEarlyHints({ link: links });
      } catch {
        // Hints are optional: a client that cannot take them still gets the response.
      }
    }
  }
}

/** Trailers as [name, value] pairs; latin1 like the head, so the app's bytes pass unchanged. */
function latin1Pairs(flat: ReadonlyArray<string | Buffer>): Array<[string, string]> {
  const text = (v: string | Buffer | undefined) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v));
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([text(flat[i]), text(flat[i + 1])]);
  return out;
}

/** An absolute-form target (`GET http://host/path`, proxy style) as the origin-form apps expect. */
function originForm(url: string): string {
  if (url.startsWith('/') || url === '*') return url;
  try {
    const u = new URL(url);
    return `${u.pathname}${u.search}`;
  } catch {
    return url; // undici refuses it: the caller answers 400
  }
}
