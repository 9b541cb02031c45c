/**
 * The one request chain, for HTTP requests and WebSocket upgrades alike. REQUEST_CHAIN lists its
 * steps in order; each one answers (and the chain ends there) or passes to the next. The last
 * one routes the request: the transport forwards it (app.ts + proxy-forward.ts for HTTP,
 * websocket.ts for upgrades), which is the only place the two differ.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Config } from '../config.js';
import { normaliseHost, type AppEntry, type AppRegistry } from '../discovery/app-registry.js';
import { ActivatorError, BodyTooLargeError, ShuttingDownError, UnknownHostError, WakeTimeoutError, asActivatorError } from '../errors.js';
import { isUptimeMonitor, monitorAnswer, monitorState } from '../idle/monitor.js';
import type { TrafficTracker } from '../idle/traffic.js';
import type { Metrics } from '../metrics.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import type { WakeResult } from '../wake/wake-attempt.js';
import type { Endpoint } from '../wake/readiness.js';
import { wantsHtml } from './error-page.js';
import type { HoldGate } from './hold.js';
import type { WaitingPages } from './waiting-page.js';

/** One request (or upgrade) on its way through the chain. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly url: string;
  /** An HTTP Upgrade (WebSocket) on a raw socket, rather than a request with a reply. */
  readonly upgrade: boolean;
  /** What closes when the client is done or gone: the response (HTTP) or the socket (upgrade). */
  readonly conn: { once(event: 'close', fn: () => void): unknown; on(event: 'close', fn: () => void): unknown; readonly writableFinished: boolean; readonly destroyed: boolean };
  /** Set by resolveHost. */
  entry: AppEntry | undefined;
}

/** The chain passed (holdOrWake): the transport forwards. */
export interface Routed {
  kind: 'routed';
  entry: AppEntry;
  /** Settles with the endpoint once the app is ready (immediately on the fast path). */
  endpoint: Promise<Endpoint>;
  /** Filled in when the endpoint is known: held while the app woke (a cold start), and for how long. */
  wake: { cold: boolean; ms: number };
}

/** A step's answer: an error (rendered from the error table), or a response of the activator's own. */
export type Answer = { kind: 'problem'; error: unknown } | { kind: 'response'; status: number; headers: Record<string, string>; body: string | Promise<string> };

/** What the steps use; built once per proxy app. */
export interface ChainContext {
  config: Pick<Config, 'maxBodyBytes' | 'monitorUserAgents' | 'monitorPaths' | 'monitorStatus'>;
  registry: AppRegistry;
  coordinator: WakeCoordinator;
  traffic: TrafficTracker;
  metrics: Metrics;
  holds: HoldGate;
  waitingPages: WaitingPages;
  /** <prefix>/wait: the waiting page's poll, held like a request and answered 204 once ready. */
  waitPath: string;
  /** A held request waits at most its app's wake timeout plus this, whatever the wake does. */
  holdGraceMs: number;
  shuttingDown: () => boolean;
  /** Fail closed (route-guard.ts): the error for a request that must not be proxied, else undefined. */
  routeGuard?: ((entry: AppEntry, headers: IncomingHttpHeaders) => ActivatorError | undefined) | undefined;
}

export interface ChainStep {
  readonly name: string;
  /** Answers, routes (the last step), or returns undefined to pass the request on. May throw an ActivatorError (its answer). */
  run(x: Exchange, c: ChainContext): Answer | Routed | undefined;
}

/** The chain, top to bottom. */
export const REQUEST_CHAIN: readonly ChainStep[] = [
  { name: 'refuse while shutting down', run: refuseWhileShuttingDown },
  { name: 'resolve the Host', run: resolveHost },
  { name: 'route guard', run: guardRoute },
  { name: 'answer uptime monitors', run: answerUptimeMonitor },
  { name: 'limits', run: enforceLimits },
  { name: 'hold or wake', run: holdOrWake },
];

/** Runs the steps in order, up to the first that answers or routes the request. */
export function runChain(x: Exchange, c: ChainContext, steps: readonly ChainStep[] = REQUEST_CHAIN): Answer | Routed {
  try {
    for (const step of steps) {
      const outcome = step.run(x, c);
      if (outcome) return outcome;
    }
  } catch (error) {
    return { kind: 'problem', error };
  }
  return { kind: 'problem', error: new ActivatorError('SA_INTERNAL', 'internal error (logged by the activator)', x.entry?.policy.service, { detail: 'the request chain ended without an answer or a route' }) };
}

/** Awaits the routed request's endpoint: undefined when the client left meanwhile (nobody to answer). */
export async function readyEndpoint(conn: Exchange['conn'], routed: Routed): Promise<Endpoint | undefined> {
  try {
    return await routed.endpoint;
  } catch (err) {
    if (conn.destroyed) return undefined;
    throw asActivatorError(err, routed.entry.policy.service);
  }
}

const NO_WAKE: Routed['wake'] = Object.freeze({ cold: false, ms: 0 });

// ---- the steps --------------------------------------------------------------------------------

/** fastify's own 503 on close is off (app.ts): the answer comes from the error table instead. */
function refuseWhileShuttingDown(_x: Exchange, c: ChainContext): Answer | undefined {
  return c.shuttingDown() ? { kind: 'problem', error: new ShuttingDownError() } : undefined;
}

/** Also the server's door for unknown Hosts (app.ts, front-door.ts). */
export function resolveHost(x: Exchange, c: ChainContext): Answer | undefined {
  const entry = c.registry.byHost(x.headers.host);
  if (!entry || !entry.policy.http) {
    // The common case under scanners and bots: answered from here, without an exception.
    c.metrics.unknownHosts.inc();
    return { kind: 'problem', error: unknownHost(x.headers.host ?? '') };
  }
  x.entry = entry;
  return undefined;
}

/** Apps whose routers may refuse a request are proxied only through their own router (route-guard.ts). */
function guardRoute(x: Exchange, c: ChainContext): Answer | undefined {
  const refused = c.routeGuard?.(appOf(x), x.headers);
  return refused ? { kind: 'problem', error: refused } : undefined;
}

/** Uptime monitors: a cheap answer, never a wake, never activity (src/idle/monitor.ts). */
function answerUptimeMonitor(x: Exchange, c: ChainContext): Answer | undefined {
  if (!isUptimeMonitor(x, c.config)) return undefined;
  const entry = appOf(x);
  c.metrics.monitorRequests.inc({ app: entry.policy.service });
  const answer = monitorAnswer(monitorState(entry.replicas, c.coordinator.isWaking(entry.policy.service)), c.config);
  return { kind: 'response', ...answer };
}

/** A declared body over ACTIVATOR_MAX_BODY: refused before anything is held or woken. */
function enforceLimits(x: Exchange, c: ChainContext): Answer | undefined {
  const length = Number(x.headers['content-length'] ?? 0);
  if (length > c.config.maxBodyBytes) return { kind: 'problem', error: new BodyTooLargeError(c.config.maxBodyBytes, length) };
  return undefined;
}

/** The fast path (an endpoint is known), the waiting page, or a held request that starts the wake. */
function holdOrWake(x: Exchange, c: ChainContext): Answer | Routed {
  const entry = appOf(x);
  const service = entry.policy.service;
  const fast = c.coordinator.endpointFor(service);
  if (fast) {
    openTraffic(x, c, service);
    return { kind: 'routed', entry, endpoint: Promise.resolve(fast), wake: NO_WAKE };
  }
  if (showsWaitingPage(x, c, entry)) return waitingPage(x, c, entry);
  return hold(x, c, entry);
}

// ---- pieces of the steps ----------------------------------------------------------------------

function appOf(x: Exchange): AppEntry {
  if (!x.entry) throw new ActivatorError('SA_INTERNAL', 'internal error (logged by the activator)', undefined, { detail: 'a chain step that needs the app ran before resolveHost' });
  return x.entry;
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

/**
 * Open work for the idle reaper, closed when the response ends or the client leaves: the
 * connection's 'close' covers both, also for proxied replies, which fastify's hooks never see,
 * and for a WebSocket tunnel, open as long as its socket is.
 */
function openTraffic(x: Exchange, c: ChainContext, service: string): void {
  x.conn.once('close', c.traffic.begin(service));
}

function showsWaitingPage(x: Exchange, c: ChainContext, entry: AppEntry): boolean {
  return !x.upgrade && entry.policy.strategy === 'waiting-page' && x.method === 'GET' && x.url !== c.waitPath && wantsHtml(x.headers);
}

/**
 * Starts the wake for this browser but answers at once; the page waits on <prefix>/wait. The
 * wake takes a hold slot like a held request, so pages cannot start unbounded work.
 */
function waitingPage(x: Exchange, c: ChainContext, entry: AppEntry): Answer {
  const release = c.holds.acquire(entry.policy.service);
  c.coordinator.ensureReady(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000), `browser request for ${x.headers.host}`).then(release, release);
  return {
    kind: 'response',
    status: 503,
    headers: { 'retry-after': '2', 'cache-control': 'no-store', 'x-activator-waking': entry.policy.service, 'content-type': 'text/html; charset=utf-8' },
    // The Host the visitor asked for (one of the app's, as the registry matched it), not the service name.
    body: c.waitingPages.render(entry, normaliseHost(x.headers.host ?? '')),
  };
}

/**
 * Takes a hold slot and starts (or joins) the wake; the slot is freed when it settles or the client
 * leaves. What one held request keeps is counted in bytes (10,000 may wait for one wake:
 * docs/performance.md, burst10k): one promise, one timer, one close listener (which also ends its
 * open traffic), and one reaction on the shared wake; no AbortController, no async frame.
 */
function hold(x: Exchange, c: ChainContext, entry: AppEntry): Routed {
  const service = entry.policy.service;
  const release = c.holds.acquire(service);
  const closeTraffic = c.traffic.begin(service);
  const arrivedAt = performance.now();
  const wake = { cold: false, ms: 0 };
  const endpoint = new Promise<Endpoint>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined = undefined;
    let held = true;
    /** Ends the hold once: true for the first caller, who answers. */
    const stop = (): boolean => {
      if (!held) return false;
      held = false;
      clearTimeout(timer);
      release();
      return true;
    };
    // Whatever the wake does (a Docker call stuck in the queue, say), a held request is answered.
    timer = setTimeout(() => {
      if (stop()) reject(new WakeTimeoutError(service, entry.policy.wakeTimeoutMs, `the held ${x.upgrade ? 'upgrade' : 'request'} waited its limit`));
    }, entry.policy.wakeTimeoutMs + c.holdGraceMs);
    // 'close' comes once: `on` spares the wrapper `once` makes.
    x.conn.on('close', () => {
      closeTraffic();
      if (stop() && !x.conn.writableFinished) reject(new Error('client went away while held'));
    });
    let joined: Promise<WakeResult>;
    try {
      joined = c.coordinator.joinWake(entry, () => (x.upgrade ? `WebSocket for ${x.headers.host}` : `request for ${x.headers.host}`));
    } catch (err) {
      if (stop()) reject(err); // a failure backoff refuses the wake at once
      return;
    }
    joined.then(
      (result) => {
        if (!stop()) return;
        try {
          const ready = c.coordinator.readyAfter(entry, result);
          wake.cold = ready.waitedForWake;
          wake.ms = performance.now() - arrivedAt;
          resolve(ready.endpoint);
        } catch (err) {
          reject(err);
        }
      },
      (err: unknown) => {
        if (stop()) reject(err);
      },
    );
  });
  endpoint.catch(() => undefined); // awaited by the transport; avoid an unhandled rejection meanwhile
  return { kind: 'routed', entry, endpoint, wake };
}
