/**
 * WakeCoordinator: one wake per app however many requests arrive (singleflight), detached from
 * any single request, with its own timeout. Known-ready apps take the fast path: no Docker call.
 */
import type { Logger } from 'pino';
import { stateLabels } from '../apps/state.js';
import type { AppEntry, AppRegistry } from '../discovery/app-registry.js';
import { ActivatorError, AppFailedError, WakeBackoffError, WakeTimeoutError, asActivatorError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { foldAsleep } from '../savings/savings.js';
import type { SwarmClient, TaskInfo } from '../swarm/swarm.js';
import { taskMayServe, type Endpoint, type ReadinessProbe } from './readiness.js';
import type { WakeHistory } from './wake-history.js';

/** How long a wake waits for Swarm to schedule a task before it re-checks its scale-up. */
const RESCALE_AFTER_MS = 1000;
/**
 * Between two Docker checks, a running task that still refuses connections (booting) is probed
 * again this often: no Docker call, and a refused connection costs the app nothing (measured
 * effect: docs/performance.md).
 */
const BOOT_PROBE_MS = 5;
/** Longest wait between wakes of an app whose wakes keep failing (unless the base is longer). */
const MAX_RETRY_BACKOFF_MS = 5 * 60_000;

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
  /** Called once an app is confirmed ready after a wake (the reaper's min-awake clock starts). */
  onWoken?: (service: string, scaled: boolean) => void;
  /** Records each wake (start, duration, outcome) for the dashboard and the waiting page. */
  history?: WakeHistory;
}

/** How a wake went, for the requests that waited on it. */
interface WakeResult {
  /** The app was really asleep: scaled up, or its first check found nothing answering. */
  cold: boolean;
}

/** An endpoint, and whether getting it meant waiting for the app to wake (a cold start). */
export interface ReadyEndpoint {
  endpoint: Endpoint;
  waitedForWake: boolean;
}

interface ReadySet {
  endpoints: Endpoint[];
  next: number;
}

/** The last failed wake of an app, while it holds further wakes back. */
export interface WakeFailure {
  error: ActivatorError;
  at: number;
  /** Epoch ms from which a request may start a new wake. */
  retryAt: number;
  /** Failed wakes in a row. */
  streak: number;
  /** The task template that failed: a redeploy (new image, env, …) ends the backoff at once. */
  templateKey: string;
}

/** Only the app's own failures hold wakes back; Docker being down is retried by the next request. */
const BACKOFF_CODES = new Set(['SA_APP_FAILED', 'SA_WAKE_TIMEOUT']);

export class WakeCoordinator {
  private readonly ready = new Map<string, ReadySet>();
  private readonly pending = new Map<string, Promise<WakeResult>>();
  private readonly failures = new Map<string, WakeFailure>();
  /** One task list per app at a time for endpointLost, shared by every slow request of the app. */
  private readonly taskChecks = new Map<string, { at: number; tasks: Promise<TaskInfo[]> }>();

  constructor(private readonly options: WakeCoordinatorOptions) {
    options.registry.on('changed', (service, entry) => {
      // Scaled down or removed: the cached task addresses are gone. Other updates keep them;
      // a replaced task is caught by the proxy's connection error instead.
      if (!entry || entry.replicas === 0) this.invalidate(service);
      if (!entry) {
        this.failures.delete(service);
        this.taskChecks.delete(service);
        this.options.history?.forget(service);
      }
    });
  }

  /** Fast path: a known-ready endpoint, round-robin; undefined when the app must be (re)checked. */
  endpointFor(service: string): Endpoint | undefined {
    const set = this.ready.get(service);
    if (!set || set.endpoints.length === 0) return undefined;
    const ep = set.endpoints[set.next % set.endpoints.length];
    set.next = (set.next + 1) % set.endpoints.length;
    return ep;
  }

  isWaking(service: string): boolean {
    return this.pending.has(service);
  }

  /** Forget ready endpoints (all, or one that refused a connection). */
  invalidate(service: string, endpoint?: Endpoint): void {
    const set = this.ready.get(service);
    if (!set) return;
    if (endpoint) set.endpoints = set.endpoints.filter((e) => e.taskId !== endpoint.taskId);
    if (!endpoint || set.endpoints.length === 0) this.ready.delete(service);
  }

  /**
   * For a request the app is slow to answer: is the task behind this endpoint gone (its node lost,
   * the task shut down or replaced)? Then the endpoint is forgotten. A lost node never answers or
   * resets, so without this a request on it waits for TCP to give up (many minutes). One Docker
   * call per app per second at most, and only for requests already slow.
   */
  async endpointLost(entry: AppEntry, endpoint: Endpoint): Promise<boolean> {
    const service = entry.policy.service;
    let check = this.taskChecks.get(service);
    if (!check || Date.now() - check.at > 1000) {
      check = { at: Date.now(), tasks: this.options.swarm.listTasks(entry.policy.serviceId) };
      this.taskChecks.set(service, check);
      check.tasks.catch(() => this.taskChecks.delete(service));
    }
    const task = (await check.tasks).find((t) => t.id === endpoint.taskId);
    const lost = !task || !taskMayServe(task, entry.policy.readyWhen);
    if (lost) this.invalidate(service, endpoint);
    return lost;
  }

  /** The failed wake holding this app's wakes back, if any. */
  failureOf(service: string): WakeFailure | undefined {
    return this.failures.get(service);
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
    const service = entry.policy.service;
    const fast = this.endpointFor(service);
    if (fast) return { endpoint: fast, waitedForWake: false };
    let wake = this.pending.get(service);
    if (!wake) {
      if (!force) this.throwIfBackingOff(entry);
      wake = this.wake(entry, reason).finally(() => this.pending.delete(service));
      this.pending.set(service, wake);
    }
    const result = await abortable(wake, signal);
    const ep = this.endpointFor(service);
    if (!ep) throw new AppFailedError(service, 'became ready but has no endpoint');
    return { endpoint: ep, waitedForWake: result.cold };
  }

  /** Starts (or joins) a wake without a request waiting on it (the ops API); ignores a failure backoff. */
  async wakeNow(entry: AppEntry, signal: AbortSignal, reason: string): Promise<void> {
    await this.ensureReady(entry, signal, reason, true);
  }

  private throwIfBackingOff(entry: AppEntry): void {
    const service = entry.policy.service;
    const failure = this.failures.get(service);
    if (!failure) return;
    const now = Date.now();
    // Redeployed, or scaled up by someone else (ops, another replica): worth a fresh look now.
    const atRest = (entry.replicas ?? 0) <= entry.policy.idleReplicas;
    if (failure.templateKey !== entry.templateKey || !atRest || now >= failure.retryAt) return;
    throw new WakeBackoffError(service, failure.error, now - failure.at, failure.retryAt - now);
  }

  private noteFailure(entry: AppEntry, error: ActivatorError): void {
    const base = this.options.retryBackoffMs ?? 0;
    if (base <= 0 || !BACKOFF_CODES.has(error.code)) return;
    const service = entry.policy.service;
    const previous = this.failures.get(service);
    const streak = previous && previous.templateKey === entry.templateKey ? previous.streak + 1 : 1;
    const backoff = Math.min(base * 2 ** (streak - 1), Math.max(base, MAX_RETRY_BACKOFF_MS));
    const at = Date.now();
    this.failures.set(service, { error, at, retryAt: at + backoff, streak, templateKey: entry.templateKey });
    this.options.log.warn({ app: service, code: error.code, streak, backoffMs: backoff }, `wakes of ${service} held back for ${Math.round(backoff / 1000)} s after ${streak} failed wake(s) in a row`);
  }

  private async wake(entry: AppEntry, reason: string): Promise<WakeResult> {
    const { policy } = entry;
    const { swarm, registry, readiness, metrics, history } = this.options;
    const log = this.options.log.child({ app: policy.service });
    const started = performance.now();
    const deadline = Date.now() + policy.wakeTimeoutMs;
    const timeout = AbortSignal.timeout(policy.wakeTimeoutMs);
    let scaled = false;
    /** The members this wake scaled up: a failed wake undoes these and nothing else. */
    const scaledUp: AppEntry[] = [];
    const members = registry.groupMembers(policy.group, entry.deployment);
    const group = members.some((m) => m.policy.service === policy.service) ? members : [entry];

    let cold = false;
    metrics.setState(policy.service, 'waking');
    history?.started(policy.service, reason);
    try {
      // Failures of tasks that existed before this wake are old news, not this wake's failure.
      const before = await swarm.listTasks(policy.serviceId);
      const known = new Set(before.map((t) => t.id));

      const results = await Promise.all(
        group.map(async (member) => {
          const target = member.policy.replicas;
          const res = await swarm.scaleService(member.policy.service, target, {
            onlyIf: (current) => (current.replicas ?? 0) < target,
            labels: stateLabels('woken', member.policy.service === policy.service ? `woken: ${reason}` : `woken with group ${policy.group}: ${reason}`),
            // The asleep period that ends here, into the savings labels, in the same update.
            labelsFor: (current) => foldAsleep(current.labels, current.replicas, member.policy.idleReplicas, Date.now()),
          });
          if (res.changed) {
            scaledUp.push(member);
            metrics.wakes.inc({ app: member.policy.service });
            log.info({ service: member.policy.service, from: res.previousReplicas, to: target, version: res.version }, 'scaled up');
          }
          return { service: member.policy.service, changed: res.changed };
        }),
      );
      scaled = results.some((r) => r.service === policy.service && r.changed);
      cold = scaled;

      const becameReady = (endpoints: Endpoint[]): WakeResult => {
        this.ready.set(policy.service, { endpoints, next: 0 });
        this.failures.delete(policy.service);
        const seconds = (performance.now() - started) / 1000;
        if (scaled) metrics.wakeDuration.observe({ app: policy.service }, seconds);
        metrics.setState(policy.service, 'awake');
        log.info({ ms: Math.round(seconds * 1000), endpoints: endpoints.length, scaled }, 'app ready');
        this.options.onWoken?.(policy.service, scaled);
        history?.finished(policy.service, { ms: Math.round(seconds * 1000), outcome: 'ready', cold });
        return { cold };
      };
      let lastSeen = 'not checked yet';
      let lastScaleAt = performance.now();
      for (;;) {
        const tick = performance.now();
        const check = await readiness.check(policy, known);
        lastSeen = check.lastSeen;
        if (check.ready.length > 0) return becameReady(check.ready);
        cold = true; // nothing answered yet: whoever waits from here on waits for the app to start
        if (check.failure) throw new AppFailedError(policy.service, check.failure);
        if (check.scheduled === 0 && performance.now() - lastScaleAt > RESCALE_AFTER_MS) {
          // Nothing scheduled a while after our scale-up: another replica's scale-down (or an
          // operator) may have landed after it. Scale up again; a no-op if replicas are at target.
          lastScaleAt = performance.now();
          const again = await swarm.scaleService(policy.service, policy.replicas, {
            onlyIf: (current) => (current.replicas ?? 0) < policy.replicas,
            labels: stateLabels('woken', `woken: ${reason}`),
            labelsFor: (current) => foldAsleep(current.labels, current.replicas, policy.idleReplicas, Date.now()),
          });
          if (again.changed) {
            if (!scaledUp.some((m) => m.policy.service === policy.service)) scaledUp.push(entry);
            log.warn({ to: policy.replicas }, 'scaled down under a wake; scaled up again');
          }
        }
        if (Date.now() >= deadline) throw new WakeTimeoutError(policy.service, policy.wakeTimeoutMs, lastSeen);
        let booting = check.booting;
        while (booting.length > 0 && !timeout.aborted && performance.now() - tick + BOOT_PROBE_MS < this.options.probeIntervalMs) {
          await sleep(BOOT_PROBE_MS, timeout);
          const again = await readiness.probeEndpoints(booting, policy);
          if (again.ready.length > 0) return becameReady(again.ready);
          booting = again.booting;
        }
        const wait = Math.max(0, this.options.probeIntervalMs - (performance.now() - tick));
        await sleep(Math.min(wait, Math.max(0, deadline - Date.now())), timeout);
      }
    } catch (raw) {
      const err = asActivatorError(raw, policy.service);
      metrics.wakeFailures.inc({ app: policy.service, reason: err.code });
      log.error({ err, code: err.code }, 'wake failed');
      // Don't leave a half-woken app behind: it would crash-loop or sit unready forever. Only what
      // this wake scaled up goes back: an app someone else scaled up keeps its replicas, whoever
      // asks for it (a stranger's request must not put a running app to sleep).
      if (err.code === 'SA_WAKE_TIMEOUT' || err.code === 'SA_APP_FAILED') {
        if (scaledUp.length > 0) await this.scaleBack(scaledUp, log, `wake failed: ${err.code}`);
        else log.warn({ code: err.code }, 'wake failed; this wake scaled nothing up, so nothing is scaled back');
      }
      metrics.setState(policy.service, 'asleep');
      this.noteFailure(entry, err);
      history?.finished(policy.service, { ms: Math.round(performance.now() - started), outcome: 'failed', code: err.code, message: err.message.slice(0, 300), cold: true });
      throw err;
    }
  }

  private async scaleBack(group: AppEntry[], log: Logger, reason: string): Promise<void> {
    await Promise.all(
      group.map(async (member) => {
        const { service, idleReplicas, replicas } = member.policy;
        try {
          const res = await this.options.swarm.scaleService(service, idleReplicas, {
            onlyIf: (current) => (current.replicas ?? 0) === replicas,
            labels: stateLabels('slept', reason),
          });
          if (res.changed) log.warn({ service, to: idleReplicas }, 'scaled back after failed wake');
        } catch (err) {
          log.error({ err, service }, 'scale-back after failed wake failed');
        }
      }),
    );
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Waits for a shared promise, but lets one waiter leave early (client gone) without cancelling it. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
