/**
 * Wakes apps ahead of their keep-awake windows: once per window occurrence, at its start minus the
 * lead time (or as soon as the activator sees the window, if it started while the app was asleep
 * and nobody woke it). The IdleReaper keeps them up until the window ends (decideIdle's
 * keep-awake rule); after that the normal idle rules apply.
 *
 * Once per occurrence: an app that ops put to sleep inside its window stays asleep until a
 * request wakes it (or the activator restarts inside the window, which wakes it once more).
 */
import type { Logger } from 'pino';
import type { AppEntry, AppRegistry } from '../discovery/app-registry.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import { keepAwakeState } from './keep-awake.js';

export interface KeepAwakeSchedulerOptions {
  registry: Pick<AppRegistry, 'all' | 'synced'>;
  coordinator: Pick<WakeCoordinator, 'isWaking' | 'wakeNow'>;
  log: Logger;
  /** After a scheduled wake: the app gets a full idle timeout from then, like an ops wake. */
  onWoken?: (service: string) => void;
  /** How often windows are looked at (the wake is at most this late). */
  tickMs?: number;
  now?: () => number;
}

export class KeepAwakeScheduler {
  private readonly now: () => number;
  /** Per app: the start of the window occurrence it was last woken (or found awake) for. */
  private readonly handled = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: KeepAwakeSchedulerOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.options.tickMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  /** One look at every app with a schedule; returns the wakes it started (tests await them). */
  tick(): Promise<void>[] {
    const { registry } = this.options;
    if (!registry.synced) return [];
    const now = this.now();
    const started: Promise<void>[] = [];
    const seen = new Set<string>();
    for (const entry of registry.all()) {
      const schedule = entry.policy.keepAwake;
      const app = entry.policy.service;
      if (!schedule || entry.replicas === null) continue; // global services are never scaled
      seen.add(app);
      const state = keepAwakeState(schedule, now);
      if (!state.current || this.handled.get(app) === state.current.start) continue;
      this.handled.set(app, state.current.start);
      const asleep = (entry.replicas ?? 0) <= entry.policy.idleReplicas;
      if (!asleep || this.options.coordinator.isWaking(app)) continue;
      started.push(this.wake(entry, schedule.spec, state.current.start));
    }
    for (const app of this.handled.keys()) if (!seen.has(app)) this.handled.delete(app);
    return started;
  }

  private wake(entry: AppEntry, spec: string, windowStart: number): Promise<void> {
    const app = entry.policy.service;
    const log = this.options.log.child({ app });
    log.info({ window: spec, windowStart: new Date(windowStart).toISOString() }, 'waking for its keep-awake window');
    const p = this.options.coordinator
      .wakeNow(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000), `keep-awake ${spec}`)
      .then(() => this.options.onWoken?.(app))
      .catch((err: unknown) => log.error({ err, window: spec }, 'keep-awake wake failed'))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }
}
