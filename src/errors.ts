/**
 * Domain errors and the one table that maps them to HTTP answers (ERROR_CODES). Every error
 * answer of the proxy, the WebSocket path and the admin app is a row of it; only
 * src/http/error-page.ts turns an error into a response.
 *
 * `message` goes to the client, so it never carries internals (task IPs and IDs, Docker's or
 * Swarm's messages, stack traces); `detail` carries them to the log line only.
 */
import { SwarmUnavailableError } from './swarm/swarm.js';

export class ActivatorError extends Error {
  /** Overrides the table's Retry-After when the error knows better (a wake backoff's time left). */
  retryAfterSeconds: number | undefined;
  /** For the log only: what the client must not see (task error, Docker's message, addresses). */
  readonly detail: string | undefined;
  /** The table's status, where fastify looks for it (an error from a body stream, say). */
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly app?: string,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = code;
    this.detail = options?.detail;
    this.statusCode = ERROR_CODES[code].status;
  }
}

export const ERROR_CODES = {
  SA_UNKNOWN_HOST: { status: 404, retryAfter: false, title: 'Unknown host' },
  SA_BODY_TOO_LARGE: { status: 413, retryAfter: false, title: 'Request body too large' },
  SA_APP_FAILED: { status: 502, retryAfter: false, title: 'The app failed to start' },
  SA_UPSTREAM_ERROR: { status: 502, retryAfter: false, title: 'The app did not answer' },
  SA_DOCKER_UNAVAILABLE: { status: 503, retryAfter: true, title: 'Docker is unavailable' },
  SA_TOO_MANY_HELD: { status: 503, retryAfter: true, title: 'Too many requests waiting for this app' },
  SA_OVERLOADED: { status: 503, retryAfter: true, title: 'The activator is holding too much right now' },
  SA_SHUTTING_DOWN: { status: 503, retryAfter: true, title: 'The activator is shutting down' },
  SA_NOT_CONFIGURED: { status: 501, retryAfter: false, title: 'Not available in this activator' },
  SA_ROUTE_REQUIRED: { status: 503, retryAfter: true, title: 'This app is reached only through its own router' },
  SA_WAKE_TIMEOUT: { status: 504, retryAfter: false, title: 'The app did not become ready in time' },
  SA_BAD_REQUEST: { status: 400, retryAfter: false, title: 'Bad request' },
  SA_NOT_FOUND: { status: 404, retryAfter: false, title: 'Not found' },
  SA_UNAUTHORIZED: { status: 401, retryAfter: false, title: 'Authentication required' },
  SA_FORBIDDEN: { status: 403, retryAfter: false, title: 'Forbidden' },
  SA_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryAfter: false, title: 'Unsupported media type' },
  SA_STORE_UNAVAILABLE: { status: 503, retryAfter: true, title: 'The session store is unavailable' },
  SA_INTERNAL: { status: 500, retryAfter: false, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class UnknownHostError extends ActivatorError {
  constructor(host: string) {
    super('SA_UNKNOWN_HOST', `no app is registered for host "${host}"`);
  }
}

export class BodyTooLargeError extends ActivatorError {
  constructor(limitBytes: number, lengthBytes?: number) {
    super('SA_BODY_TOO_LARGE', lengthBytes === undefined ? `request body is over the ${limitBytes}-byte limit` : `request body of ${lengthBytes} bytes is over the ${limitBytes}-byte limit`);
  }
}

/** A request that arrives while the activator closes (SIGTERM): another replica, or a retry, serves it. */
export class ShuttingDownError extends ActivatorError {
  constructor() {
    super('SA_SHUTTING_DOWN', 'the activator is shutting down; try again shortly');
  }
}

export class WakeTimeoutError extends ActivatorError {
  constructor(app: string, timeoutMs: number, lastSeen: string) {
    super('SA_WAKE_TIMEOUT', `app ${app} was not ready within ${timeoutMs} ms`, app, { detail: `last seen: ${lastSeen}` });
  }
}

export class AppFailedError extends ActivatorError {
  constructor(
    app: string,
    taskError: string,
  ) {
    // Swarm's task error (exit codes, image names, mount paths) is the operator's business: the log has it.
    super('SA_APP_FAILED', `app ${app} failed to start (its task stopped or failed; the activator's log has Swarm's error)`, app, { detail: taskError });
  }
}

export class HoldLimitError extends ActivatorError {
  constructor(app: string, limit: number) {
    super('SA_TOO_MANY_HELD', `app ${app} already has ${limit} requests waiting for it to wake`, app);
  }
}

/** A global bound (held requests or buffered body bytes across all apps) is reached. */
export class OverloadedError extends ActivatorError {
  constructor(app: string | undefined, what: string) {
    super('SA_OVERLOADED', `the activator is at its limit (${what}); try again shortly`, app);
  }
}

export class UpstreamError extends ActivatorError {
  constructor(app: string, message: string, options?: { cause?: unknown; detail?: string }) {
    super('SA_UPSTREAM_ERROR', `app ${app}: ${message}`, app, options);
  }
}

/**
 * The app's last wake failed a moment ago: answered at once with that failure (same code and
 * status) and how long until the next request may try again, instead of another scale-up.
 */
export class WakeBackoffError extends ActivatorError {
  constructor(
    app: string,
    lastFailure: ActivatorError,
    failedAgoMs: number,
    retryAfterMs: number,
  ) {
    const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super(lastFailure.code, `${lastFailure.message} (${Math.round(failedAgoMs / 1000)} s ago; the next wake is tried in ${retryAfter} s)`, app, { cause: lastFailure, ...(lastFailure.detail ? { detail: lastFailure.detail } : {}) });
    this.retryAfterSeconds = retryAfter;
  }
}

export class DockerUnavailableError extends ActivatorError {
  constructor(app: string | undefined, cause: unknown) {
    super('SA_DOCKER_UNAVAILABLE', 'the Docker API is unavailable; try again shortly', app, { cause, detail: (cause as Error)?.message ?? String(cause) });
  }
}

/** Any error from the wake path → a domain error (Docker transport failures become 503). */
export function asActivatorError(err: unknown, app?: string): ActivatorError {
  if (err instanceof ActivatorError) return err;
  if (err instanceof SwarmUnavailableError) return new DockerUnavailableError(app, err);
  return new ActivatorError('SA_INTERNAL', 'internal error (logged by the activator)', app, { cause: err, detail: (err as Error)?.message ?? String(err) });
}
