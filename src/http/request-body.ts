/**
 * Request bodies on their way to the app: buffered within ACTIVATOR_MAX_BODY (per request) and
 * ACTIVATOR_MAX_BUFFERED_BODY (one budget for all requests: 1,000 held requests × 10 MB each must
 * not be 10 GB of memory). Bytes are freed when the response ends.
 */
import { Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest, preParsingHookHandler } from 'fastify';
import { ActivatorError, BodyTooLargeError, OverloadedError } from '../errors.js';
import type { HoldGate } from './hold.js';

export class RequestBodies {
  constructor(
    private readonly holds: HoldGate,
    private readonly maxBodyBytes: number,
    private readonly maxBufferedBytes: number,
  ) {}

  /** fastify's preParsing hook: every chunk fastify's parser buffers counts against the budget. */
  readonly countParsed: preParsingHookHandler = (request, reply, payload, done) => {
    // GET and HEAD bodies are not parsed by fastify (read below): nothing to count here.
    if (!request.routed || request.method === 'GET' || request.method === 'HEAD') return done(null, payload);
    let counted = 0;
    reply.raw.once('close', () => {
      this.holds.releaseBody(counted);
      counted = 0;
    });
    const service = request.routed.entry.policy.service;
    const holds = this.holds;
    const overBudget = () => this.overBudget(service);
    done(
      null,
      payload.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            if (!holds.reserveBody(chunk.length)) return callback(overBudget());
            counted += chunk.length;
            callback(null, chunk);
          },
        }),
      ),
    );
  };

  /**
   * The body to send: the one fastify buffered, or, for a GET or HEAD that carries one (fastify
   * parses none there), read here under the same limits, since a streamed body would reach the
   * app before a bad chunk was seen.
   */
  async of(request: FastifyRequest, reply: FastifyReply, service: string): Promise<Buffer | null> {
    const parsed = request.body as Buffer | undefined;
    if (parsed) return parsed;
    return carriesBody(request) ? this.readUnparsed(request, reply, service) : null;
  }

  private readUnparsed(request: FastifyRequest, reply: FastifyReply, service: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const raw = request.raw;
      const chunks: Buffer[] = [];
      let length = 0;
      reply.raw.once('close', () => this.holds.releaseBody(length));
      const fail = (err: Error) => {
        raw.off('data', onData);
        raw.resume(); // drain, never forward
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        if (length + chunk.length > this.maxBodyBytes) return fail(new BodyTooLargeError(this.maxBodyBytes));
        if (!this.holds.reserveBody(chunk.length)) return fail(this.overBudget(service));
        length += chunk.length;
        chunks.push(chunk);
      };
      raw.on('data', onData);
      raw.once('end', () => resolve(Buffer.concat(chunks, length)));
      raw.once('error', (err) => fail(new ActivatorError('SA_BAD_REQUEST', 'malformed request body', service, { detail: err.message })));
      raw.once('aborted', () => fail(new ActivatorError('SA_BAD_REQUEST', 'request body cut off', service)));
    });
  }

  private overBudget(service: string): OverloadedError {
    return new OverloadedError(service, `${this.maxBufferedBytes} bytes of request bodies are already buffered`);
  }
}

/** A request whose body fastify did not read (GET, HEAD, …) but which has one. */
function carriesBody(request: FastifyRequest): boolean {
  const h = request.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}
