/**
 * The proxy-facing fastify app (built, not listening). Every Host is an app's Host: there are no
 * routes of our own here except <prefix>/wait for the waiting page. Request path:
 *
 *   onRequest: resolve Host → app (404 without any Docker call) → fast path, or hold + start wake
 *   body:      buffered up to the limit (413 beyond it, nothing sent to the app)
 *   handler:   await readiness → proxy to the task address (upstream.ts: undici)
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { METHODS, type IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { normaliseHost, type AppEntry, type AppRegistry } from '../discovery/app-registry.js';
import { ActivatorError, OverloadedError, UnknownHostError, UpstreamError, WakeTimeoutError, asActivatorError } from '../errors.js';
import { isUptimeMonitor, monitorAnswer, monitorState } from '../idle/monitor.js';
import type { TrafficTracker } from '../idle/traffic.js';
import type { Metrics } from '../metrics.js';
import type { Endpoint } from '../wake/readiness.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import type { WakeHistory } from '../wake/wake-history.js';
import { sendProblem, toProblem, wantsHtml } from './error-page.js';
import { HoldGate } from './hold.js';
import { ProblemLog } from './problem-log.js';
import { TrustedPeers, headersForApp, isRetryableConnectError } from './forwarding.js';
import { ForwardError, Upstream } from './upstream.js';
import { WaitingPages } from './waiting-page.js';
import { attachWebSocketProxy } from './websocket.js';

/** Bounds with defaults (docs/security.md): a test or embedder may leave them out. */
type BoundsConfig = Pick<Config, 'trustedProxies' | 'maxHeldTotal' | 'maxBufferedBodyBytes' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'maxUpgradeEarlyBytes' | 'maxConnections'>;

export const DEFAULT_BOUNDS: Readonly<BoundsConfig> = {
  trustedProxies: ['local-networks'],
  maxHeldTotal: 10_000,
  maxBufferedBodyBytes: 128 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxUpgradeEarlyBytes: 64 * 1024,
  maxConnections: 20_000,
};

export interface HttpDeps {
  config: Pick<Config, 'maxBodyBytes' | 'maxHeldPerApp' | 'retryAfterSeconds' | 'internalPrefix' | 'monitorUserAgents' | 'monitorPaths' | 'monitorStatus'> & Partial<BoundsConfig>;
  registry: AppRegistry;
  coordinator: WakeCoordinator;
  traffic: TrafficTracker;
  metrics: Metrics;
  log: Logger;
  /** Recent wakes: the waiting page's elapsed and usual wake time. */
  history?: WakeHistory;
  /** ACTIVATOR_WAITING_PAGE_DIR: where waiting-page templates named by labels are looked up. */
  waitingPageDir?: string | undefined;
  /** Fail closed (route-guard.ts): the error for a request that must not be proxied, else undefined. */
  routeGuard?: ((entry: AppEntry, headers: IncomingHttpHeaders) => ActivatorError | undefined) | undefined;
}

interface Routed {
  entry: AppEntry;
  /** Settles with the endpoint once the app is ready (immediately on the fast path). */
  endpoint: Promise<Endpoint>;
  /** Filled in when the endpoint is known: held while the app woke (a cold start), and for how long. */
  wake: { cold: boolean; ms: number };
}

const NO_WAKE: Routed['wake'] = Object.freeze({ cold: false, ms: 0 });

declare module 'fastify' {
  interface FastifyRequest {
    routed: Routed | undefined;
  }
}

/** Only on responses that waited for a wake; Server-Timing shows the wait in the browser's dev tools. */
function coldStartHeaders(wakeMs: number): string[] {
  return ['X-Activator-Cold-Start', 'true', 'Server-Timing', `wake;dur=${Math.round(wakeMs)}`];
}
/** A request the app has not answered for 2–4 s has its task checked (node lost?), then every 2 s. */
const SLOW_CHECK_EVERY_MS = 2000;
/** A held request waits at most this long past its app's wake timeout, whatever the wake does. */
const HOLD_GRACE_MS = 5000;
/** Methods RFC 9110 calls idempotent: sent again when the task they went to was lost. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** The task a request went to is gone (node lost, task shut down): the request was aborted. */
class TaskLostError extends Error {
  override readonly name = 'TaskLostError';
}

/**
 * UnknownHostError without a stack trace: scanners send many, capturing a stack is a large share
 * of a 404's cost (docs/performance.md), and the stack of a Host nobody claims tells nothing.
 */
function unknownHost(host: string): UnknownHostError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new UnknownHostError(host);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A request whose body fastify did not read (GET, HEAD, …) but which has one. */
function carriesBody(request: FastifyRequest): boolean {
  const h = request.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

export async function buildProxyApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config, registry, coordinator, traffic, metrics } = deps;
  const bounds: BoundsConfig = { ...DEFAULT_BOUNDS, ...definedOnly(config) };
  const app = Fastify({
    // The cast picks Fastify's logger generic; without it the instance type is pino's Logger.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.log.child({ module: 'http' }) as FastifyBaseLogger,
    // We log each problem once, in the error handler; per-request lines would drown them.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxBodyBytes,
    // Paths belong to the apps: pass them through as they came.
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 10_000 },
    requestIdHeader: false,
    // No child logger per request (~1% of hot-path CPU): our lines carry host, url and app instead.
    childLoggerFactory: (logger) => logger,
    return503OnClosing: true,
    // Slow clients (slowloris): the head within headersTimeout, the whole request within
    // requestTimeout, checked every second (Node's default check runs every 30 s).
    http: { headersTimeout: bounds.headersTimeoutMs, requestTimeout: bounds.requestTimeoutMs, connectionsCheckingInterval: 1000 },
    requestTimeout: bounds.requestTimeoutMs,
  });
  app.server.maxConnections = bounds.maxConnections;
  const holds = new HoldGate({ perApp: config.maxHeldPerApp, total: bounds.maxHeldTotal, bodyBytes: bounds.maxBufferedBodyBytes }, metrics);
  const trusted = new TrustedPeers(bounds.trustedProxies);
  const problemLog = new ProblemLog();
  const waitPath = `${config.internalPrefix}/wait`;
  const waitingPages = new WaitingPages({ history: deps.history, templateDir: deps.waitingPageDir, waitPath, retrySeconds: 2, log: deps.log.child({ module: 'http' }) });

  const upstream = new Upstream({ connections: 256, keepAliveTimeoutMs: 4_000, connectTimeoutMs: 3_000, slowCheckEveryMs: SLOW_CHECK_EVERY_MS });
  app.addHook('onClose', () => upstream.close());

  // Bodies stay bytes: no JSON parse/re-serialise on the way through.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.maxBodyBytes }, (_req, body, done) => done(null, body));

  // Every buffered body counts against one budget for all requests (ACTIVATOR_MAX_BUFFERED_BODY):
  // 1,000 held requests × 10 MB each must not be 10 GB of memory. Freed when the response ends.
  app.addHook('preParsing', (request, reply, payload, done) => {
    // GET and HEAD bodies are not parsed by fastify (readRawBody reads them): nothing to count here.
    if (!request.routed || request.method === 'GET' || request.method === 'HEAD') return done(null, payload);
    let counted = 0;
    reply.raw.once('close', () => {
      holds.releaseBody(counted);
      counted = 0;
    });
    const service = request.routed.entry.policy.service;
    done(
      null,
      payload.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            if (!holds.reserveBody(chunk.length)) {
              return callback(Object.assign(new OverloadedError(service, `${bounds.maxBufferedBodyBytes} bytes of request bodies are already buffered`), { statusCode: 503 }));
            }
            counted += chunk.length;
            callback(null, chunk);
          },
        }),
      ),
    );
  });

  app.decorateRequest('routed', undefined);
  // Paths and methods belong to the apps: route every method Node's parser knows (WebDAV etc.).
  for (const method of METHODS) {
    if (method === 'CONNECT') continue;
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }

  /**
   * Open work for the idle reaper, closed when the response ends or the client leaves: the
   * response's 'close' covers both, also for proxied replies, which fastify's hooks never see.
   */
  function openTraffic(service: string, reply: FastifyReply): void {
    reply.raw.once('close', traffic.begin(service));
  }

  app.addHook('onRequest', async (request, reply) => {
    const entry = registry.byHost(request.headers.host);
    if (!entry || !entry.policy.http) {
      // The common case under scanners and bots: answered from here, without an exception.
      metrics.unknownHosts.inc();
      return handleError(unknownHost(request.headers.host ?? ''), request, reply);
    }
    const refused = deps.routeGuard?.(entry, request.headers);
    if (refused) return handleError(refused, request, reply);
    if (isUptimeMonitor(request, config)) {
      // Uptime monitors: a cheap answer, never a wake, never activity (src/idle/monitor.ts).
      metrics.monitorRequests.inc({ app: entry.policy.service });
      const answer = monitorAnswer(monitorState(entry.replicas, coordinator.isWaking(entry.policy.service)), config);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > config.maxBodyBytes) {
      throw Object.assign(new Error(`request body of ${length} bytes is over the ${config.maxBodyBytes}-byte limit`), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
    }
    const service = entry.policy.service;
    const fast = coordinator.endpointFor(service);
    if (fast) {
      request.routed = { entry, endpoint: Promise.resolve(fast), wake: NO_WAKE };
      openTraffic(service, reply);
      return;
    }
    const isWait = request.url === waitPath;
    if (!isWait && entry.policy.strategy === 'waiting-page' && request.method === 'GET' && wantsHtml(request)) {
      // Start the wake for this browser but answer at once; the page waits on <prefix>/wait.
      // The wake takes a hold slot like a held request, so pages cannot start unbounded work.
      const release = holds.acquire(service);
      coordinator.ensureReady(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000), `browser request for ${request.headers.host}`).then(release, release);
      reply
        .code(503)
        .header('retry-after', '2')
        .header('cache-control', 'no-store')
        .header('x-activator-waking', service)
        .type('text/html; charset=utf-8');
      // The Host the visitor asked for (one of the app's, as the registry matched it), not the service name.
      return reply.send(await waitingPages.render(entry, normaliseHost(request.headers.host ?? '')));
    }
    const release = holds.acquire(service);
    const gone = new AbortController();
    // Whatever the wake does (a Docker call stuck in the queue, say), a held request is answered.
    const holdTimer = setTimeout(() => gone.abort(new WakeTimeoutError(service, entry.policy.wakeTimeoutMs, 'the held request waited its limit')), entry.policy.wakeTimeoutMs + HOLD_GRACE_MS);
    const settled = () => {
      clearTimeout(holdTimer);
      release();
    };
    const onClose = () => {
      if (!reply.raw.writableFinished) gone.abort(new Error('client went away while held'));
      settled();
    };
    reply.raw.once('close', onClose);
    const arrivedAt = performance.now();
    const wake = { cold: false, ms: 0 };
    const endpoint = coordinator.ensureReadyDetail(entry, gone.signal, `request for ${request.headers.host}`).then((ready) => {
      wake.cold = ready.waitedForWake;
      wake.ms = performance.now() - arrivedAt;
      return ready.endpoint;
    });
    endpoint.then(settled, settled);
    endpoint.catch(() => undefined); // awaited in the handler; avoid an unhandled rejection meanwhile
    request.routed = { entry, endpoint, wake };
    openTraffic(service, reply);
  });

  function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const problem = toProblem(err, config.retryAfterSeconds);
    // Bounded: one error line per app and code per 10 s, one info line per unknown host per minute
    // (problem-log.ts); scanners and backoffs were a flood of lines, and the line most of a 404's cost.
    problemLog.write(request.log as unknown as Logger, problem, { err: problem.status >= 500 ? err : undefined, host: request.headers.host, method: request.method, url: request.url });
    return sendProblem(request, reply, problem);
  }
  app.setErrorHandler((err, request, reply) => handleError(err, request, reply));

  app.all('*', async (request, reply) => {
    const routed = request.routed;
    if (!routed) throw new UnknownHostError(request.headers.host ?? '');
    let endpoint: Endpoint;
    try {
      endpoint = await routed.endpoint;
    } catch (err) {
      if (reply.raw.destroyed) return reply; // client left while held: nobody to answer
      throw asActivatorError(err, routed.entry.policy.service);
    }
    if (request.url === waitPath) {
      return reply.code(204).header('cache-control', 'no-store').send();
    }
    await proxy(request, reply, routed, endpoint);
    return reply;
  });

  /**
   * Resolves once the app's response head is on its way to the client (the rest streams from
   * undici's handler); throws a domain error when the app did not answer.
   */
  async function proxy(request: FastifyRequest, reply: FastifyReply, routed: Routed, first: Endpoint): Promise<void> {
    const service = routed.entry.policy.service;
    const headers = headersForApp(request.raw, trusted);
    // Buffered by the body parser; a GET or HEAD with a body (fastify parses none there) is read
    // here, under the same limits: a streamed body reached the app before a bad chunk was seen.
    const body = (request.body as Buffer | undefined) ?? (carriesBody(request) ? await readRawBody(request, reply, service) : null);
    const onLateError = (err: Error) => request.log.warn({ err, app: service, url: request.url }, `app ${service} broke off its response`);
    let endpoint = first;
    let cold = routed.wake.cold;
    let wakeMs = routed.wake.ms;
    const giveUp = async () => ((await coordinator.endpointLost(routed.entry, endpoint)) ? new TaskLostError(`task ${endpoint.taskId} of ${service} is gone (node lost, or the task shut down)`) : undefined);
    const replayable = IDEMPOTENT.has(request.method);
    for (let attempt = 0; ; attempt++) {
      try {
        await upstream.forward(request.raw, reply.raw, endpoint, { headers, body, extraResponseHeaders: cold ? coldStartHeaders(wakeMs) : undefined, onLateError, giveUp });
        reply.hijack(); // the head is written and the body streams from undici: fastify sends nothing
        return;
      } catch (error) {
        if (reply.raw.destroyed) {
          reply.hijack(); // the client left: nobody to answer
          return;
        }
        const written = !(error instanceof ForwardError) || error.written;
        const taskLost = error instanceof ForwardError && error.error instanceof TaskLostError;
        if (taskLost && !replayable) {
          throw new UpstreamError(service, `its task was lost while a ${request.method} was in flight (node down, or the task shut down); not sent again, since the app may have run it`, { cause: error });
        }
        if ((attempt === 0 && !written && isRetryableConnectError(error)) || (taskLost && attempt < 2)) {
          // The task went away (scaled down, replaced) before the request was sent, or the task an
          // idempotent request went to was lost: forget it and take the wake path once more.
          // Anything else the app may have seen is never sent twice.
          if (taskLost) request.log.warn({ app: service, task: endpoint.taskId, method: request.method, url: request.url }, `task of ${service} lost with a request in flight; sending it to a new task`);
          coordinator.invalidate(service, endpoint);
          const retryAt = performance.now();
          try {
            const ready = await coordinator.ensureReadyDetail(routed.entry, AbortSignal.timeout(routed.entry.policy.wakeTimeoutMs + 1000));
            endpoint = ready.endpoint;
            if (ready.waitedForWake) {
              cold = true;
              wakeMs += performance.now() - retryAt;
            }
          } catch (err) {
            throw asActivatorError(err, service);
          }
          continue;
        }
        if (error instanceof ForwardError && (error.error as { code?: string }).code === 'UND_ERR_INVALID_ARG') {
          // undici refuses to send it (`OPTIONS *`, a second Host header, …): the client's request is at fault.
          throw new ActivatorError('SA_BAD_REQUEST', 'request cannot be forwarded (e.g. a request target of *, or two Host headers)', service, { detail: error.message });
        }
        // The task address and the socket error go to the log, never to the client.
        throw new UpstreamError(service, 'did not answer', { cause: error, detail: `upstream ${endpoint.ip}:${endpoint.port} (task ${endpoint.taskId}): ${(error as Error).message}` });
      }
    }
  }

  /** A body fastify does not parse (GET, HEAD), read in full within ACTIVATOR_MAX_BODY and the shared budget. */
  function readRawBody(request: FastifyRequest, reply: FastifyReply, service: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const raw = request.raw;
      const chunks: Buffer[] = [];
      let length = 0;
      reply.raw.once('close', () => holds.releaseBody(length));
      const fail = (err: Error) => {
        raw.off('data', onData);
        raw.resume(); // drain, never forward
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        if (length + chunk.length > config.maxBodyBytes) return fail(Object.assign(new Error(`request body is over the ${config.maxBodyBytes}-byte limit`), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }));
        if (!holds.reserveBody(chunk.length)) return fail(new OverloadedError(service, `${bounds.maxBufferedBodyBytes} bytes of request bodies are already buffered`));
        length += chunk.length;
        chunks.push(chunk);
      };
      raw.on('data', onData);
      raw.once('end', () => resolve(Buffer.concat(chunks, length)));
      raw.once('error', (err) => fail(new ActivatorError('SA_BAD_REQUEST', 'malformed request body', service, { detail: err.message })));
      raw.once('aborted', () => fail(new ActivatorError('SA_BAD_REQUEST', 'request body cut off', service)));
    });
  }

  attachWebSocketProxy(app, deps, { holds, problemLog, trusted, maxEarlyBytes: bounds.maxUpgradeEarlyBytes, holdGraceMs: HOLD_GRACE_MS });
  return app;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
