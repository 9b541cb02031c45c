/**
 * WakeCoordinator: what src/http and src/idle call to get an app's endpoint. Known-ready apps take
 * the fast path (no Docker call); otherwise one wake per app however many requests arrive. It
 * only wires the pieces together:
 *
 *   singleflight.ts     one wake per app, joined by every request that needs it
 *   wake-attempt.ts     one wake: scale the group up, wait until the app answers, or undo it
 *   ready-endpoints.ts  the endpoints that answered, round-robin (the fast path)
 *   wake-backoff.ts     the last failed wake, holding further wakes back for a while
 *   lost-tasks.ts       slow requests: is their task gone (node lost, task replaced)?
 */
import type { Logger } from 'pino';
import type { AppEntry, AppRegistry } from '../discovery/app-registry.js';
import { AppFailedError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { SwarmClient } from '../swarm/swarm.js';
import { LostTaskCheck } from './lost-tasks.js';
import { ReadyEndpoints } from './ready-endpoints.js';
import type { Endpoint, ReadinessProbe } from './readiness.js';
import { Singleflight, abortable } from './singleflight.js';
import { WakeAttempt, type WakeDeps, type WakeResult } from './wake-attempt.js';
import { WakeBackoff, type WakeFailure } from './wake-backoff.js';
import type { WakeHistory } from './wake-history.js';

export type { WakeFailure } from './wake-backoff.js';

export interface WakeCoordinatorOptions {
  registry: AppRegistry;
  swarm: SwarmClient;
  readiness: ReadinessProbe;
  metrics: Metrics;
  log: Logger;
  probeIntervalMs: number;
  /**
   * After a wake failed (task error, timeout), requests for the app get that failure at once for
   * this long, doubling with each failure in a row up to 5 min, instead of another scale-up,
   * crash and scale-back each. 0 or unset: no backoff.
   */
  retryBackoffMs?: number;
  /** Called as a wake scales a service up (before it serves: Traefik must keep routing to the activator). */
  onScaledUp?: (service: string) => void;
  /**
   * Called once an app is confirmed ready after a wake (the reaper's min-awake clock starts);
   * `scaledUp`: the services of its group this wake scaled up.
   */
  onWoken?: (service: string, scaled: boolean, scaledUp: readonly string[]) => void;
  /** Records each wake (start, duration, outcome) for the dashboard and the waiting page. */
  history?: WakeHistory;
}

/** An endpoint, and whether getting it meant waiting for the app to wake (a cold start). */
export interface ReadyEndpoint {
  endpoint: Endpoint;
  waitedForWake: boolean;
}

export class WakeCoordinator {
  private readonly endpoints = new ReadyEndpoints();
  private readonly wakes = new Singleflight<WakeResult>();
  private readonly backoff: WakeBackoff;
  private readonly lostTasks: LostTaskCheck;
  private readonly wakeDeps: WakeDeps;

  constructor(options: WakeCoordinatorOptions) {
    this.backoff = new WakeBackoff(options.retryBackoffMs ?? 0, options.log);
    this.lostTasks = new LostTaskCheck(options.swarm, this.endpoints);
    const { registry, swarm, readiness, metrics, log, probeIntervalMs, onWoken, onScaledUp, history } = options;
    this.wakeDeps = { registry, swarm, readiness, metrics, log, probeIntervalMs, onWoken, onScaledUp, history, endpoints: this.endpoints, backoff: this.backoff };
    options.registry.on('changed', (service, entry) => {
      // Scaled down or removed: the cached task addresses are gone. Other updates keep them;
      // a replaced task is caught by the proxy's connection error instead.
      if (!entry || entry.replicas === 0) this.endpoints.forget(service);
      if (!entry) {
        this.backoff.clear(service);
        this.lostTasks.forget(service);
        options.history?.forget(service);
      }
    });
  }

  /** Fast path: a known-ready endpoint, round-robin; undefined when the app must be (re)checked. */
  endpointFor(service: string): Endpoint | undefined {
    return this.endpoints.next(service);
  }

  isWaking(service: string): boolean {
    return this.wakes.has(service);
  }

  /** Forget ready endpoints (all, or one that refused a connection). */
  invalidate(service: string, endpoint?: Endpoint): void {
    this.endpoints.forget(service, endpoint);
  }

  /**
   * For a request the app is slow to answer: is the task behind this endpoint gone (its node lost,
   * the task shut down or replaced)? Then the endpoint is forgotten. One Docker call per app per
   * second at most, and only for requests already slow (lost-tasks.ts).
   */
  endpointLost(entry: AppEntry, endpoint: Endpoint): Promise<boolean> {
    return this.lostTasks.isLost(entry, endpoint);
  }

  /** The failed wake holding this app's wakes back, if any. */
  failureOf(service: string): WakeFailure | undefined {
    return this.backoff.failureOf(service);
  }

  /**
   * Resolves with an endpoint that answered its probe; waits (bounded) for a wake if needed.
   * `force` (ops wake) ignores a failure backoff.
   */
  async ensureReady(entry: AppEntry, signal: AbortSignal, reason = 'request', force = false): Promise<Endpoint> {
    return (await this.ensureReadyDetail(entry, signal, reason, force)).endpoint;
  }

  /**
   * ensureReady, also telling whether the caller waited for a real wake: it started or joined one
   * that found the app asleep. Re-finding an awake app's endpoints (after a restart) is not one.
   */
  async ensureReadyDetail(entry: AppEntry, signal: AbortSignal, reason = 'request', force = false): Promise<ReadyEndpoint> {
    const fast = this.endpoints.next(entry.policy.service);
    if (fast) return { endpoint: fast, waitedForWake: false };
    return this.readyAfter(entry, await abortable(this.joinWake(entry, () => reason, force), signal));
  }

  /**
   * The app's wake, started or joined, for a caller that bounds its own wait (a held request: its
   * own timer and its client's close, src/http/chain.ts) and so needs no signal, promise or async
   * frame of its own here: 10,000 held requests each kept one (docs/performance.md, burst10k).
   * `reason` is only called when this starts the wake. Then readyAfter(entry, result).
   */
  joinWake(entry: AppEntry, reason: () => string, force = false): Promise<WakeResult> {
    return this.wakes.run(entry.policy.service, () => {
      if (!force) this.backoff.throwIfBackingOff(entry);
      return new WakeAttempt(entry, reason(), this.wakeDeps).run();
    });
  }

  /** After a wake: an endpoint of the app (round-robin), and whether the wake was a cold start. */
  readyAfter(entry: AppEntry, result: WakeResult): ReadyEndpoint {
    const ep = this.endpoints.next(entry.policy.service);
    if (!ep) throw new AppFailedError(entry.policy.service, 'became ready but has no endpoint');
    return { endpoint: ep, waitedForWake: result.cold };
  }

  /** Starts (or joins) a wake without a request waiting on it (the ops API); ignores a failure backoff. */
  async wakeNow(entry: AppEntry, signal: AbortSignal, reason: string): Promise<void> {
    await this.ensureReady(entry, signal, reason, true);
  }
}
