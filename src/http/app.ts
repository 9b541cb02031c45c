/**
 * The proxy-facing fastify app (built, not listening). Every Host is an app's Host: there are no
 * routes of our own here except <prefix>/wait for the waiting page. Request path:
 *
 *   onRequest: the request chain (chain.ts: shutting down?, Host → app, uptime monitor, limits,
 *              hold or wake); WebSocket upgrades run the same chain (websocket.ts)
 *   body:      buffered up to the limit (413 beyond it, nothing sent to the app; request-body.ts)
 *   handler:   await readiness → proxy to the task address (proxy-forward.ts, upstream.ts: undici)
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { METHODS } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { AppRegistry } from '../discovery/app-registry.js';
import { UnknownHostError, asActivatorError } from '../errors.js';
import type { TrafficTracker } from '../idle/traffic.js';
import type { Metrics } from '../metrics.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import type { WakeHistory } from '../wake/wake-history.js';
import type { Endpoint } from '../wake/readiness.js';
import { Answers } from './answers.js';
import { LOST_TASK_CHECK_EVERY_MS } from './attempts.js';
import { resolveHost, runChain, type ChainContext, type Exchange, type Routed } from './chain.js';
import { TrustedPeers } from './forwarding.js';
import { HoldGate } from './hold.js';
import { ProblemLog } from './problem-log.js';
import { frontDoorServer, type DoorAnswer } from './front-door.js';
import { forwardHttp, type HttpForwarderDeps } from './proxy-forward.js';
import { RequestBodies } from './request-body.js';
import { Upstream } from './upstream.js';
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
  routeGuard?: ChainContext['routeGuard'];
}

declare module 'fastify' {
  interface FastifyRequest {
    routed: Routed | undefined;
  }
}

/** fastify's default keepAliveTimeout, which it sets only on a server it makes itself. */
const FASTIFY_KEEP_ALIVE_TIMEOUT_MS = 72_000;

/** A held request waits at most this long past its app's wake timeout, whatever the wake does. */
const HOLD_GRACE_MS = 5000;

export async function buildProxyApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config, registry, coordinator, traffic, metrics } = deps;
  const bounds: BoundsConfig = { ...DEFAULT_BOUNDS, ...definedOnly(config) };
  const log = deps.log.child({ module: 'http' });
  const holds = new HoldGate({ perApp: config.maxHeldPerApp, total: bounds.maxHeldTotal, bodyBytes: bounds.maxBufferedBodyBytes }, metrics);
  const trusted = new TrustedPeers(bounds.trustedProxies);
  const answers = new Answers(new ProblemLog(), config.retryAfterSeconds);
  const bodies = new RequestBodies(holds, config.maxBodyBytes, bounds.maxBufferedBodyBytes);
  const waitPath = `${config.internalPrefix}/wait`;
  const waitingPages = new WaitingPages({ history: deps.history, templateDir: deps.waitingPageDir, waitPath, retrySeconds: 2, log });
  let shuttingDown = false;
  const chain: ChainContext = { config, registry, coordinator, traffic, metrics, holds, waitingPages, waitPath, holdGraceMs: HOLD_GRACE_MS, shuttingDown: () => shuttingDown, routeGuard: deps.routeGuard };
  // Unknown Hosts are answered at the server's door (front-door.ts), by the chain's own Host step.
  const unknownHostAtDoor: DoorAnswer = (req, res) => {
    if (shuttingDown) return undefined;
    const x: Exchange = { req, headers: req.headers, method: req.method ?? 'GET', url: req.url ?? '/', upgrade: false, conn: res, entry: undefined };
    const answer = resolveHost(x, chain);
    return answer?.kind === 'problem' ? answers.problem(answer.error, x, log, false) : undefined;
  };
  const app = createFastify(deps, bounds, log, unknownHostAtDoor);
  // fastify's own 503 on close is off (createFastify): from here on the chain answers SA_SHUTTING_DOWN.
  app.addHook('preClose', async () => {
    shuttingDown = true;
  });

  const upstream = new Upstream({ connections: 256, keepAliveTimeoutMs: 4_000, connectTimeoutMs: 3_000, slowCheckEveryMs: LOST_TASK_CHECK_EVERY_MS });
  app.addHook('onClose', () => upstream.close());
  const forwarder: HttpForwarderDeps = { coordinator, upstream, trusted, bodies };

  // Bodies stay bytes: no JSON parse/re-serialise on the way through.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.maxBodyBytes }, (_req, body, done) => done(null, body));
  app.addHook('preParsing', bodies.countParsed);

  app.decorateRequest('routed', undefined);
  // Paths and methods belong to the apps: route every method Node's parser knows (WebDAV etc.).
  for (const method of METHODS) {
    if (method === 'CONNECT') continue;
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }

  app.addHook('onRequest', async (request, reply) => {
    const x: Exchange = { req: request.raw, headers: request.headers, method: request.method, url: request.url, upgrade: false, conn: reply.raw, entry: undefined };
    const outcome = runChain(x, chain);
    if (outcome.kind === 'routed') {
      request.routed = outcome;
      return;
    }
    const answer = outcome.kind === 'problem' ? answers.problem(outcome.error, request, request.log as Logger, false) : await answers.render(outcome, request, request.log as Logger, false);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });

  app.setErrorHandler((err, request, reply) => {
    const answer = answers.problem(err, request, request.log as Logger, false);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });

  app.all('*', async (request, reply) => {
    const routed = request.routed;
    if (!routed) throw new UnknownHostError(request.headers.host ?? '');
    // readyEndpoint inline: one async frame fewer per held request (docs/performance.md, burst10k).
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
    await forwardHttp(forwarder, request, reply, routed, endpoint);
    return reply;
  });

  attachWebSocketProxy(app, { chain, answers, trusted, log: deps.log, maxEarlyBytes: bounds.maxUpgradeEarlyBytes });
  return app;
}

function createFastify(deps: HttpDeps, bounds: BoundsConfig, log: Logger, doorAnswer: DoorAnswer): FastifyInstance {
  const app = Fastify({
    // The cast picks Fastify's logger generic; without it the instance type is pino's Logger.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: log as FastifyBaseLogger,
    // We log each problem once, in the error handler; per-request lines would drown them.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.maxBodyBytes,
    // Paths belong to the apps: pass them through as they came.
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 10_000 },
    requestIdHeader: false,
    // No child logger per request (hot-path CPU: docs/performance.md): our lines carry host, url and app instead.
    childLoggerFactory: (logger) => logger,
    // Requests during close get SA_SHUTTING_DOWN from the chain (the error table), not fastify's own body.
    return503OnClosing: false,
    serverFactory: (handler) =>
      frontDoorServer(handler, doorAnswer, {
        // Slow clients (slowloris): the head within headersTimeout, the whole request within
        // requestTimeout, checked every second (Node's default check runs every 30 s).
        http: { headersTimeout: bounds.headersTimeoutMs, requestTimeout: bounds.requestTimeoutMs, connectionsCheckingInterval: 1000 },
        keepAliveTimeoutMs: FASTIFY_KEEP_ALIVE_TIMEOUT_MS,
        requestTimeoutMs: bounds.requestTimeoutMs,
      }),
  });
  app.server.maxConnections = bounds.maxConnections;
  return app;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
