/**
 * WakeAttempt: one wake of one app, with its own timeout (the wake-timeout label), detached from
 * any request. Scale the app's group up, wait until the app answers, and on failure undo what this
 * wake scaled up and nothing else.
 */
import type { Logger } from 'pino';
import type { AppEntry } from '../discovery/app-registry.js';
import { AppFailedError, WakeTimeoutError, asActivatorError, type ActivatorError } from '../errors.js';
import { foldAsleep } from '../savings/savings.js';
import type { ReadyEndpoints } from './ready-endpoints.js';
import type { Endpoint, ReadinessResult } from './readiness.js';
import { stateLabels } from '../apps/state.js';
import type { WakeBackoff } from './wake-backoff.js';
import type { WakeCoordinatorOptions } from './coordinator.js';
import type { WakeHistory } from './wake-history.js';

/** How long a wake waits for Swarm to schedule a task before it re-checks its scale-up. */
const RESCALE_AFTER_MS = 1000;
/**
 * Between two Docker checks, a running task that still refuses connections (booting) is probed
 * again this often: no Docker call, and a refused connection costs the app nothing (measured
 * effect: docs/performance.md).
 */
const BOOT_PROBE_MS = 5;

/** The coordinator's options a wake uses, plus the pieces it reports to. */
export interface WakeDeps extends Pick<WakeCoordinatorOptions, 'registry' | 'swarm' | 'readiness' | 'metrics' | 'log' | 'probeIntervalMs'> {
  /** Where a ready app's endpoints go (the fast path reads them). */
  endpoints: ReadyEndpoints;
  /** Told of every failed wake; cleared by a successful one. */
  backoff: WakeBackoff;
  onWoken?: WakeCoordinatorOptions['onWoken'] | undefined;
  onScaledUp?: WakeCoordinatorOptions['onScaledUp'] | undefined;
  history?: WakeHistory | undefined;
}

/** How a wake went, for the requests that waited on it. */
export interface WakeResult {
  /** The app was really asleep: scaled up, or its first check found nothing answering. */
  cold: boolean;
}

export class WakeAttempt {
  private readonly log: Logger;
  private readonly started = performance.now();
  private readonly deadline: number;
  private readonly timeout: AbortSignal;
  /** The members this wake scaled up: a failed wake undoes these and nothing else. */
  private readonly scaledUp: AppEntry[] = [];
  /** This wake scaled the app itself up (not only other members of its group). */
  private scaled = false;
  private cold = false;
  /** Tasks that existed before this wake: their failures are old news, not this wake's failure. */
  private known: ReadonlySet<string> = new Set();
  /** When this wake last asked Swarm for the app's replicas. */
  private lastScaleAt = 0;

  constructor(
    private readonly entry: AppEntry,
    private readonly reason: string,
    private readonly deps: WakeDeps,
  ) {
    this.log = deps.log.child({ app: entry.policy.service });
    this.deadline = Date.now() + entry.policy.wakeTimeoutMs;
    this.timeout = AbortSignal.timeout(entry.policy.wakeTimeoutMs);
  }

  async run(): Promise<WakeResult> {
    const { service } = this.entry.policy;
    this.deps.metrics.setState(service, 'waking');
    this.deps.history?.started(service, this.reason);
    try {
      const before = await this.deps.swarm.listTasks(this.entry.policy.serviceId);
      this.known = new Set(before.map((t) => t.id));
      await this.scaleUpGroup();
      return this.becameReady(await this.untilReady());
    } catch (raw) {
      throw await this.failed(asActivatorError(raw, service));
    }
  }

  /** Every member of the app's group to its replicas, in one update each with the state and savings labels. */
  private async scaleUpGroup(): Promise<void> {
    const { policy } = this.entry;
    const { registry, swarm, metrics } = this.deps;
    const members = registry.groupMembers(policy.group, this.entry.deployment);
    const group = members.some((m) => m.policy.service === policy.service) ? members : [this.entry];
    const results = await Promise.all(
      group.map(async (member) => {
        const target = member.policy.replicas;
        const res = await swarm.scaleService(member.policy.service, target, {
          onlyIf: (current) => (current.replicas ?? 0) < target,
          labels: stateLabels('woken', member.policy.service === policy.service ? `woken: ${this.reason}` : `woken with group ${policy.group}: ${this.reason}`),
          // The asleep period that ends here, into the savings labels, in the same update.
          labelsFor: (current) => foldAsleep(current.labels, current.replicas, member.policy.idleReplicas, Date.now()),
        });
        if (res.changed) {
          this.scaledUp.push(member);
          this.deps.onScaledUp?.(member.policy.service);
          metrics.wakes.inc({ app: member.policy.service });
          this.log.info({ service: member.policy.service, from: res.previousReplicas, to: target, version: res.version }, 'scaled up');
        }
        return { service: member.policy.service, changed: res.changed };
      }),
    );
    this.scaled = results.some((r) => r.service === policy.service && r.changed);
    this.cold = this.scaled;
    this.lastScaleAt = performance.now();
  }

  /** Checks (Docker + probe) every probe interval, re-probing booting tasks in between, until an endpoint answers. */
  private async untilReady(): Promise<Endpoint[]> {
    const { policy } = this.entry;
    const { probeIntervalMs } = this.deps;
    let booting: Endpoint[] = [];
    for (;;) {
      const tick = performance.now();
      const check = await this.checkWhileProbing(booting);
      if (Array.isArray(check)) return check;
      if (check.ready.length > 0) return check.ready;
      booting = check.booting;
      this.cold = true; // nothing answered yet: whoever waits from here on waits for the app to start
      if (check.failure) throw new AppFailedError(policy.service, check.failure);
      await this.rescaleIfUnscheduled(check);
      if (Date.now() >= this.deadline) throw new WakeTimeoutError(policy.service, policy.wakeTimeoutMs, check.lastSeen);
      const booted = await this.probeBooting(booting, tick);
      if (booted) return booted;
      const wait = Math.max(0, probeIntervalMs - (performance.now() - tick));
      await sleep(Math.min(wait, Math.max(0, this.deadline - Date.now())), this.timeout);
    }
  }

  /**
   * Nothing scheduled a while after our scale-up: another replica's scale-down (or an operator)
   * may have landed after it. Scale up again; a no-op if replicas are at target.
   */
  private async rescaleIfUnscheduled(check: ReadinessResult): Promise<void> {
    if (check.scheduled !== 0 || performance.now() - this.lastScaleAt <= RESCALE_AFTER_MS) return;
    const { policy } = this.entry;
    this.lastScaleAt = performance.now();
    const again = await this.deps.swarm.scaleService(policy.service, policy.replicas, {
      onlyIf: (current) => (current.replicas ?? 0) < policy.replicas,
      labels: stateLabels('woken', `woken: ${this.reason}`),
      labelsFor: (current) => foldAsleep(current.labels, current.replicas, policy.idleReplicas, Date.now()),
    });
    if (again.changed) {
      if (!this.scaledUp.some((m) => m.policy.service === policy.service)) this.scaledUp.push(this.entry);
      this.deps.onScaledUp?.(policy.service);
      this.log.warn({ to: policy.replicas }, 'scaled down under a wake; scaled up again');
    }
  }

  /**
   * The next Docker check; meanwhile the tasks the last one saw booting are probed every probe
   * interval, and the first that answers ends the wait (the check's result is dropped). On a busy
   * engine a task list takes far longer than the probe interval (hundreds of ms with 50 wakes at
   * once): the app's first answer must not wait for it. Not every BOOT_PROBE_MS: 50 wakes would
   * make 10,000 refused connections a second on the cores their apps boot on.
   */
  private async checkWhileProbing(booting: Endpoint[]): Promise<ReadinessResult | Endpoint[]> {
    const { readiness } = this.deps;
    const check = readiness.check(this.entry.policy, this.known);
    if (booting.length === 0) return check;
    let checked = false;
    const settled = check.then(
      () => (checked = true),
      () => (checked = true),
    );
    const probing = (async (): Promise<Endpoint[] | undefined> => {
      let left = booting;
      while (left.length > 0 && !this.timeout.aborted) {
        await Promise.race([sleep(this.deps.probeIntervalMs, this.timeout), settled]);
        if (checked) return undefined;
        const again = await readiness.probeEndpoints(left, this.entry.policy);
        if (again.ready.length > 0) return again.ready;
        left = again.booting;
      }
      return undefined;
    })();
    const early = await Promise.race([probing, settled.then(() => undefined)]);
    if (early) {
      check.catch(() => undefined); // dropped: the app already answered
      return early;
    }
    return check;
  }

  /** Running tasks that refused the connection, probed every BOOT_PROBE_MS until the next check is due. */
  private async probeBooting(booting: Endpoint[], tick: number): Promise<Endpoint[] | undefined> {
    const { readiness, probeIntervalMs } = this.deps;
    while (booting.length > 0 && !this.timeout.aborted && performance.now() - tick + BOOT_PROBE_MS < probeIntervalMs) {
      await sleep(BOOT_PROBE_MS, this.timeout);
      const again = await readiness.probeEndpoints(booting, this.entry.policy);
      if (again.ready.length > 0) return again.ready;
      booting = again.booting;
    }
    return undefined;
  }

  private becameReady(endpoints: Endpoint[]): WakeResult {
    const { service } = this.entry.policy;
    const { metrics, history } = this.deps;
    this.deps.endpoints.set(service, endpoints);
    this.deps.backoff.clear(service);
    const seconds = (performance.now() - this.started) / 1000;
    if (this.scaled) metrics.wakeDuration.observe({ app: service }, seconds);
    metrics.setState(service, 'awake');
    this.log.info({ ms: Math.round(seconds * 1000), endpoints: endpoints.length, scaled: this.scaled }, 'app ready');
    this.deps.onWoken?.(service, this.scaled, this.scaledUp.map((m) => m.policy.service));
    history?.finished(service, { ms: Math.round(seconds * 1000), outcome: 'ready', cold: this.cold });
    return { cold: this.cold };
  }

  /** Counts, logs and records the failure, scales back what this wake scaled up; returns the error to throw. */
  private async failed(err: ActivatorError): Promise<ActivatorError> {
    const { service } = this.entry.policy;
    const { metrics, history } = this.deps;
    metrics.wakeFailures.inc({ app: service, reason: err.code });
    this.log.error({ err, code: err.code }, 'wake failed');
    // Don't leave a half-woken app behind: it would crash-loop or sit unready forever. Only what
    // this wake scaled up goes back: an app someone else scaled up keeps its replicas, whoever
    // asks for it (a stranger's request must not put a running app to sleep).
    if (err.code === 'SA_WAKE_TIMEOUT' || err.code === 'SA_APP_FAILED') {
      if (this.scaledUp.length > 0) await this.scaleBack(`wake failed: ${err.code}`);
      else this.log.warn({ code: err.code }, 'wake failed; this wake scaled nothing up, so nothing is scaled back');
    }
    metrics.setState(service, 'asleep');
    this.deps.backoff.noteFailure(this.entry, err);
    history?.finished(service, { ms: Math.round(performance.now() - this.started), outcome: 'failed', code: err.code, message: err.message.slice(0, 300), cold: true });
    return err;
  }

  private async scaleBack(reason: string): Promise<void> {
    await Promise.all(
      this.scaledUp.map(async (member) => {
        const { service, idleReplicas, replicas } = member.policy;
        try {
          const res = await this.deps.swarm.scaleService(service, idleReplicas, {
            onlyIf: (current) => (current.replicas ?? 0) === replicas,
            labels: stateLabels('slept', reason),
          });
          if (res.changed) this.log.warn({ service, to: idleReplicas }, 'scaled back after failed wake');
        } catch (err) {
          this.log.error({ err, service }, 'scale-back after failed wake failed');
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
