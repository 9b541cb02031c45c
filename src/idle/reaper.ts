/**
 * IdleReaper: every check interval, scales each idle app down to its idle replicas.
 *
 * Activity comes from the sources (own traffic, Traefik metrics, network bytes) into an
 * ActivityLog shared with other replicas through the Store. An app is scaled down only when
 * decideIdle() says so, and then race-safely:
 *   1. take the per-app store lock (another replica may be doing the same);
 *   2. re-inspect the service (version, replicas, the idle labels as they are now);
 *   3. drop the wake path's ready endpoints, so new requests go through the wake path;
 *   4. re-check open connections, wakes and activity (store included) right before the update,
 *      and once more synchronously inside the update (onlyIf);
 *   5. scale with the version read in step 2; on a conflict, leave it for the next round.
 * A request arriving meanwhile is ordered after the update by the ScaleDownGuard and re-wakes it.
 */
import type { Logger } from 'pino';
import type { AppEntry, AppRegistry } from '../discovery/app-registry.js';
import { readState, stateLabels } from '../apps/state.js';
import type { AppState } from '../apps/model.js';
import { formatDuration } from '../duration.js';
import { LABELS, idleTimeoutOf, minAwakeOf } from '../labels.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { SwarmClient } from '../swarm/swarm.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import { ActivityLog } from './activity-log.js';
import type { ActivitySource } from './activity-source.js';
import { decideIdle, type IdleDecision } from './decide.js';
import { keepAwakeState } from './keep-awake.js';
import { ScaleDownGuard } from './scale-down-guard.js';

export const DEFAULT_LOCK_TTL_MS = 30_000;

export interface IdleReaperOptions {
  registry: Pick<AppRegistry, 'all' | 'byService' | 'groupMembers' | 'synced'>;
  swarm: Pick<SwarmClient, 'inspectService' | 'scaleService'>;
  coordinator: Pick<WakeCoordinator, 'isWaking' | 'invalidate'>;
  store: Store;
  sources: ActivitySource[];
  checkIntervalMs: number;
  log: Logger;
  metrics?: Metrics;
  guard?: ScaleDownGuard;
  lockTtlMs?: number;
  now?: () => number;
  /** Peak RSS of one task of the app while awake (network-bytes source), written with the scale-down. */
  rssOf?: (app: string) => number | undefined;
  /** With the Traefik provider: the two-phase handoff before each scale-down (src/traefik/handoff.ts). */
  handoff?: Pick<Handoffs, 'begin' | 'cancel'> | undefined;
}

import type { Handoffs } from '../traefik/handoff.js';

export type ScaleDownOutcome = 'scaled-down' | 'already-down' | 'not-found' | 'locked' | 'busy' | 'conflict' | 'error';

export interface CheckResult {
  app: string;
  decision: IdleDecision | { action: 'skip'; reason: 'store-unavailable' | 'global'; idleForMs: number };
  outcome?: ScaleDownOutcome;
}

export class IdleReaper {
  readonly activity: ActivityLog;
  readonly guard: ScaleDownGuard;
  private readonly now: () => number;
  private readonly awakeSince = new Map<string, number>();
  private readonly wokenAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private checking: Promise<CheckResult[]> | undefined;
  private lastStoreErrorLog = 0;

  constructor(private readonly options: IdleReaperOptions) {
    this.now = options.now ?? Date.now;
    this.activity = new ActivityLog(options.store, options.log);
    this.guard = options.guard ?? new ScaleDownGuard();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const source of this.options.sources) source.start((app, at) => this.activity.record(app, at, source.name));
    const loop = () => {
      if (!this.running) return;
      this.check()
        .catch((err: unknown) => this.options.log.error({ err }, 'idle check failed'))
        .finally(() => {
          if (this.running) this.timer = setTimeout(loop, this.options.checkIntervalMs).unref();
        });
    };
    this.timer = setTimeout(loop, this.options.checkIntervalMs).unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    for (const source of this.options.sources) await source.stop();
    await this.checking?.catch(() => undefined);
    await this.activity.flush();
  }

  /** From the WakeCoordinator's onWoken: min-awake starts now, and the wake counts as activity. */
  noteWoken(service: string, scaled: boolean): void {
    const at = this.now();
    this.activity.record(service, at, 'wake');
    if (!scaled) return;
    this.wokenAt.set(service, at);
    this.options.store.setRecord(service, { wokenAt: at }).catch((err: unknown) => this.logStoreError(err, service));
  }

  /** Activity recorded by hand (ops API wake): the app gets a full idle timeout from now. */
  touch(service: string): void {
    this.activity.record(service, this.now(), 'ops API');
  }

  /** One pass over every registered app (the timer calls it; tests call it directly). */
  async check(): Promise<CheckResult[]> {
    if (this.checking) return this.checking; // never two passes at once
    this.checking = this.runCheck().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async runCheck(): Promise<CheckResult[]> {
    const { registry } = this.options;
    if (!registry.synced) return [];
    const entries = registry.all();
    const names = new Set(entries.map((e) => e.policy.service));
    for (const map of [this.awakeSince, this.wokenAt]) for (const app of map.keys()) if (!names.has(app)) map.delete(app);
    this.activity.retain(names);
    return Promise.all(entries.map((entry) => this.checkApp(entry)));
  }

  private async checkApp(entry: AppEntry): Promise<CheckResult> {
    const { policy } = entry;
    const app = policy.service;
    const now = this.now();
    if (entry.replicas === null) return { app, decision: { action: 'skip', reason: 'global', idleForMs: 0 } };
    if (entry.replicas <= policy.idleReplicas) this.awakeSince.delete(app);
    else if (!this.awakeSince.has(app)) this.awakeSince.set(app, now);

    let decision: IdleDecision;
    try {
      decision = await this.decide(entry, policy.idleTimeoutMs, policy.minAwakeMs, now, true);
    } catch (err) {
      // Without the store we cannot see other replicas' activity: never scale down blind.
      this.logStoreError(err, app);
      return { app, decision: { action: 'skip', reason: 'store-unavailable', idleForMs: 0 } };
    }
    if (Number.isFinite(decision.idleForMs)) this.options.metrics?.secondsSinceActivity.set({ app }, Math.round(decision.idleForMs / 100) / 10);
    if (decision.action !== 'scale-down') return { app, decision };
    const outcome = await this.scaleDown(entry, { reason: `idle for ${formatDuration(decision.idleForMs)}` });
    return { app, decision, outcome };
  }

  /** The facts of one app (and its group: a worker stays up while its web member is busy). */
  private async decide(entry: AppEntry, idleTimeoutMs: number, minAwakeMs: number, now: number, keepAwakeRules: boolean): Promise<IdleDecision> {
    const { policy } = entry;
    const app = policy.service;
    const members = this.groupOf(entry);
    const open = this.openCount(members);
    if (open > 0 && (entry.replicas ?? 0) > policy.idleReplicas) {
      // An open connection is activity for as long as it lasts; other replicas see it through the store.
      this.activity.record(app, now, 'open connection');
    }
    const awake = (entry.replicas ?? 0) > policy.idleReplicas;
    let lastActivity: number | undefined;
    let wokenAt: number | undefined = this.wokenAt.get(app);
    if (awake && open === 0) {
      for (const member of members) lastActivity = max(lastActivity, await this.activity.latest(member));
      wokenAt = max(wokenAt, (await this.options.store.getRecord(app)).wokenAt, wokenAtOf(entry.state));
    } else {
      for (const member of members) lastActivity = max(lastActivity, this.activity.localLatest(member));
    }
    return decideIdle({
      now,
      replicas: entry.replicas ?? 0,
      idleReplicas: policy.idleReplicas,
      open,
      waking: members.some((m) => this.options.coordinator.isWaking(m)),
      lastActivity,
      awakeSince: this.awakeSince.get(app) ?? (awake ? now : -Infinity),
      wokenAt,
      idleTimeoutMs,
      minAwakeMs,
      keepAwake: keepAwakeRules && this.keptAwake(members, now),
    });
  }

  /** A keep-awake window (or its lead time), or a keep-awake.until still ahead, of any group member holds the whole group up. */
  private keptAwake(members: string[], now: number): boolean {
    return members.some((m) => {
      const policy = this.options.registry.byService(m)?.policy;
      if ((policy?.keepAwakeUntil ?? 0) > now) return true;
      const schedule = policy?.keepAwake;
      return schedule !== undefined && keepAwakeState(schedule, now).holding;
    });
  }

  private groupOf(entry: AppEntry): string[] {
    const members = this.options.registry.groupMembers(entry.policy.group, entry.deployment).map((m) => m.policy.service);
    return members.includes(entry.policy.service) ? members : [entry.policy.service];
  }

  private openCount(members: string[]): number {
    let open = 0;
    for (const source of this.options.sources) for (const m of members) open += source.open?.(m) ?? 0;
    return open;
  }

  /**
   * Scales the app to its idle replicas, race-safely (see the file comment). `force` (ops sleep)
   * skips the idle-timeout, min-awake and keep-awake rules, never the open-connection and wake checks.
   */
  async scaleDown(entry: AppEntry, opts: { reason: string; force?: boolean }): Promise<ScaleDownOutcome> {
    const { store, swarm, coordinator, log: baseLog, metrics } = this.options;
    const { policy } = entry;
    const app = policy.service;
    const log = baseLog.child({ app });
    const lockKey = `scale-down:${app}`;
    let token: string | null;
    try {
      token = await store.tryLock(lockKey, this.options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS);
    } catch (err) {
      this.logStoreError(err, app);
      return 'error';
    }
    if (!token) {
      log.debug('another replica is scaling this app down');
      return 'locked';
    }
    try {
      const svc = await swarm.inspectService(app);
      if (!svc) return 'not-found';
      if (svc.replicas === null || svc.replicas <= policy.idleReplicas) return 'already-down';
      // The labels as they are now: ops may have changed the idle timeout since the last event.
      const idleTimeoutMs = idleTimeoutOf(svc.labels, policy.idleTimeoutMs);
      const minAwakeMs = minAwakeOf(svc.labels, policy.minAwakeMs);
      const fresh: AppEntry = { ...entry, replicas: svc.replicas, version: svc.version, labels: svc.labels, state: readState(svc.labels) };

      coordinator.invalidate(app);
      const now = this.now();
      // The registry's schedule, not the fresh labels: a keep-awake label just set applies from its event.
      const again = await this.decide(fresh, opts.force ? 0 : idleTimeoutMs, opts.force ? 0 : minAwakeMs, now, !opts.force);
      if (again.action !== 'scale-down') {
        log.info({ reason: again.action === 'skip' ? again.reason : undefined }, 'scale-down called off: activity at the last moment');
        return 'busy';
      }
      const members = this.groupOf(fresh);
      // Issue 11's handoff: Traefik sends the app's requests to the activator before its tasks go.
      const handoff = this.options.handoff;
      if (handoff) {
        const ready = await handoff.begin(members);
        if (!ready.ok) {
          log.warn({ reason: ready.reason }, `not scaling down: ${ready.reason}`);
          return 'busy';
        }
      }
      const stillIdle = () => {
        if (this.openCount(members) > 0 || members.some((m) => coordinator.isWaking(m))) return false;
        if (opts.force) return true;
        if (this.keptAwake(members, this.now())) return false;
        const latest = members.reduce<number | undefined>((acc, m) => max(acc, this.activity.localLatest(m)), undefined);
        return latest === undefined || this.now() - latest >= idleTimeoutMs;
      };
      const result = await this.guard.run(app, () =>
        swarm.scaleService(app, policy.idleReplicas, {
          expectedVersion: svc.version,
          onlyIf: stillIdle,
          labels: { ...stateLabels('slept', opts.reason), ...rssLabel(this.options.rssOf?.(app)) },
        }),
      );
      if (!result.changed) {
        await handoff?.cancel(members);
        log.info({ version: svc.version }, 'scale-down skipped: the service changed or became busy; next round decides');
        return result.conflict ? 'conflict' : 'already-down';
      }
      this.awakeSince.delete(app);
      if (this.openCount(members) > 0 || members.some((m) => coordinator.isWaking(m))) {
        // The update was already on its way; the wake path (after the guard) scales it back up.
        log.info('a request arrived while the scale-down was being written; the wake brings the app back');
      }
      metrics?.idleScaleDowns.inc({ app });
      if (policy.idleReplicas === 0) metrics?.setState(app, 'asleep');
      log.info({ from: svc.replicas, to: policy.idleReplicas, version: result.version, reason: opts.reason }, 'scaled down');
      store.setRecord(app, { lastScaleDown: { at: now, reason: opts.reason } }).catch((err: unknown) => this.logStoreError(err, app));
      return 'scaled-down';
    } catch (err) {
      await this.options.handoff?.cancel(this.groupOf(entry)).catch(() => undefined);
      log.error({ err }, 'scale-down failed');
      return 'error';
    } finally {
      await store.unlock(lockKey, token).catch((err: unknown) => this.logStoreError(err, app));
    }
  }

  private logStoreError(err: unknown, app: string): void {
    if (Date.now() - this.lastStoreErrorLog < 10_000) return;
    this.lastStoreErrorLog = Date.now();
    this.options.log.warn({ err, app }, 'store unavailable; not scaling down until it answers');
  }
}

/** The memory sleeping frees when the service sets no reservation or limit (src/savings/). */
function rssLabel(bytes: number | undefined): Record<string, string> {
  return bytes !== undefined && bytes > 0 ? { [LABELS.savingsRss]: String(Math.round(bytes)) } : {};
}

function max(a: number | undefined, ...rest: Array<number | undefined>): number | undefined {
  let m = a;
  for (const v of rest) if (v !== undefined && (m === undefined || v > m)) m = v;
  return m;
}

/** When the app was woken, if the last scale written on it was a wake. */
function wokenAtOf(state: AppState | undefined): number | undefined {
  return state?.kind === 'woken' ? state.since : undefined;
}
