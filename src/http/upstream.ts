/**
 * One request to a task over undici's Agent (a keep-alive Pool per task address). The app's
 * response goes straight into Node's ServerResponse from undici's dispatch handler: no Readable in
 * between and no per-request header objects beyond the one copy (why not @fastify/reply-from:
 * docs/performance.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { SlowRequests, type SlowRequest } from '../wake/lost-tasks.js';
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
   * Asked for a request the app has not answered for a while (UpstreamOptions.slowCheckEveryMs),
   * and again each period: an Error aborts the request with it (its task is lost), undefined
   * keeps waiting.
   */
  giveUp?: () => Promise<Error | undefined>;
}

/** Kept for the life of a task's connections; Agent drops a Pool once its sockets are gone. */
export interface UpstreamOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  /** How often requests still waiting for the app's answer are checked (ForwardOptions.giveUp). */
  slowCheckEveryMs: number;
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
  private readonly slow: SlowRequests<ResponseWriter>;

  constructor(opts: UpstreamOptions) {
    this.slow = new SlowRequests<ResponseWriter>(opts.slowCheckEveryMs);
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
        new ResponseWriter(res, opts, resolve, reject, this.slow),
      );
    });
  }

  close(): Promise<void> {
    this.slow.stop();
    return this.agent.close();
  }
}

/** undici's (native, unwrapped) handler interface, writing to the client's response as bytes arrive. */
class ResponseWriter implements Dispatcher.DispatchHandler, SlowRequest {
  /** SlowRequests' period when this request started waiting for the app. */
  waitingSince = 0;
  private resume: (() => void) | undefined;
  private abort: ((err?: Error) => void) | undefined;
  private onDrain: (() => void) | undefined;
  private waitingForDrain = false;
  /** onConnect ran: undici is writing the request to a socket, so the app may see it. */
  private written = false;
  private clientLeft = false;
  private checking = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly opts: ForwardOptions,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
    private readonly slow: SlowRequests<ResponseWriter>,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.written = true;
    this.abort = abort;
    if (this.res.destroyed) return this.clientGone();
    // The client left: stop reading from the app too (and free the connection for others).
    this.res.once('close', () => {
      if (!this.res.writableFinished) this.clientGone();
    });
    if (this.opts.giveUp) this.slow.add(this);
  }

  /** Called by SlowRequests for a request the app has not answered for a while. */
  checkSlow(): void {
    const giveUp = this.opts.giveUp;
    if (this.checking || !giveUp) return;
    this.checking = true;
    giveUp().then(
      (err) => {
        this.checking = false;
        if (err && !this.res.headersSent) this.abort?.(err);
      },
      () => {
        this.checking = false; // Docker did not answer: ask again next period
      },
    );
  }

  private clientGone(): void {
    this.clientLeft = true;
    this.abort?.(new Error('client went away'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      // Informational (102, 103): not the response. Early hints' Link headers go on to the client.
      if (statusCode === 103) this.earlyHints(rawHeaders);
      return true;
    }
    this.slow.delete(this);
    this.resume = resume;
    const headers = headersForClient(rawHeaders);
    if (this.opts.extraResponseHeaders) headers.push(...this.opts.extraResponseHeaders);
    // Throws on a head Node refuses to write (bad status text, say): undici then calls onError, before anything was sent.
    if (statusText) this.res.writeHead(statusCode, statusText, headers);
    else this.res.writeHead(statusCode, headers);
    // Node sends a head with the first body byte: an event stream's head goes out now, so the
    // client sees it open even while the app stays silent (must-hold 5 of issue 11).
    if (isEventStream(headers)) this.res.flushHeaders();
    this.resolve();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      this.onDrain ??= () => {
        this.waitingForDrain = false;
        this.resume?.();
      };
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
    this.slow.delete(this);
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

/** A flat [name, value, …] head with Content-Type text/event-stream. */
function isEventStream(flat: readonly string[]): boolean {
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if ((flat[i] as string).length === 12 && (flat[i] as string).toLowerCase() === 'content-type') return /^\s*text\/event-stream\b/i.test(flat[i + 1] as string);
  }
  return false;
}
