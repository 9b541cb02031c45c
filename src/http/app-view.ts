/**
 * One app as ops see it: GET /api/apps and the dashboard's live feed (GET /api/events) send the
 * same view, so the page and the CLI never disagree.
 */
import type { AppEntry, AppRegistry } from '../discovery/app-registry.js';
import type { IdleReaper } from '../idle/reaper.js';
import { keepAwakeView } from '../idle/keep-awake.js';
import type { TrafficTracker } from '../idle/traffic.js';
import { LABELS } from '../labels.js';
import { appSavings, type SavingsInput } from '../savings/savings.js';
import type { WakeCoordinator, WakeFailure } from '../wake/coordinator.js';
import type { WakeHistory } from '../wake/wake-history.js';

export interface AppViewDeps {
  coordinator: Pick<WakeCoordinator, 'isWaking' | 'failureOf'>;
  traffic: TrafficTracker;
  reaper?: Pick<IdleReaper, 'activity'> | undefined;
  history?: Pick<WakeHistory, 'inProgress' | 'recent' | 'usualMs'> | undefined;
  /** Every app's savings facts (GET /api/report, the savings column). */
  savings?: (() => SavingsInput[]) | undefined;
  /** Hosts a service claims together with another (the owner keeps each). */
  registry?: Pick<AppRegistry, 'conflictsOf'> | undefined;
  /** The Traefik provider's view of the app (src/traefik/provider.ts). */
  traefik?: { viewOf(entry: AppEntry): TraefikAppView } | undefined;
}

export interface TraefikAppView {
  provider: 'on' | 'off';
  /** Why requests must come through the activator's router for it (else 503), or null. */
  ownRouterRequired: { router: string; reason: string } | null;
  /** What could not be carried over to Traefik (the app fails closed where it needs its router). */
  problems: string[];
  /** In a handoff before a scale-down: the activator's routers outrank the app's. */
  handoff: boolean;
}

/** What the dashboard shows as the app's state: asleep, waking, awake, failed, or backing off after a failure. */
export type DisplayState = 'asleep' | 'waking' | 'awake' | 'failed' | 'backing-off';

export interface WakeFailureView {
  code: string;
  message: string;
  at: string;
  retryAt: string;
  failuresInARow: number;
}

/** A failed wake as ops see it: what failed, when, and when the next request may wake the app. */
export function wakeFailureView(f: WakeFailure | undefined, templateKey: string): WakeFailureView | null {
  if (!f || Date.now() >= f.retryAt || f.templateKey !== templateKey) return null;
  return { code: f.error.code, message: f.error.message, at: new Date(f.at).toISOString(), retryAt: new Date(f.retryAt).toISOString(), failuresInARow: f.streak };
}

type Savings = ReturnType<typeof appSavings>;

function savingsView(s: Savings | undefined) {
  if (!s) return null;
  return { asleepSeconds: s.asleepSeconds, memoryPerTaskBytes: s.memoryPerTaskBytes, memorySource: s.memorySource, tasksFreed: s.tasksFreed, savedGiBHours: s.savedGiBHours, env: s.env };
}

/** The views of these apps (savings worked out once for the batch). */
export function appViews(entries: AppEntry[], deps: AppViewDeps) {
  const now = Date.now();
  const wanted = new Set(entries.map((e) => e.policy.service));
  const savings = new Map((deps.savings?.() ?? []).filter((i) => wanted.has(i.service)).map((i) => [i.service, appSavings(i, { to: now })]));
  return entries.map((e) => appView(e, deps, savings.get(e.policy.service), now));
}

function appView(e: AppEntry, deps: AppViewDeps, savings: Savings | undefined, now: number) {
  const { coordinator, traffic, reaper, history } = deps;
  const service = e.policy.service;
  const waking = coordinator.isWaking(service);
  const replicas = e.replicas ?? 0;
  const wakeFailure = wakeFailureView(coordinator.failureOf(service), e.templateKey);
  const wakes = history?.recent(service) ?? [];
  const activity = reaper?.activity.localLatestWithSource(service);
  const ownLast = traffic.lastActivity(service);

  // State, since when and why: the wake in progress, a failure, else the labels of the last scale.
  const labelSince = e.labels[LABELS.stateSince] ?? null;
  let display: { state: DisplayState; since: string | null; reason: string | null };
  const running = history?.inProgress(service);
  const lastWake = wakes[0];
  if (waking) {
    display = { state: 'waking', since: running ? new Date(running.at).toISOString() : null, reason: running ? `woken: ${running.reason}` : null };
  } else if (wakeFailure && replicas <= e.policy.idleReplicas) {
    display = { state: 'backing-off', since: wakeFailure.at, reason: `${wakeFailure.code}: ${wakeFailure.message}; next wake from ${wakeFailure.retryAt}` };
  } else if (lastWake?.outcome === 'failed' && replicas <= e.policy.idleReplicas && (labelSince === null || Date.parse(labelSince) <= lastWake.at + lastWake.ms + 1000)) {
    display = { state: 'failed', since: new Date(lastWake.at + lastWake.ms).toISOString(), reason: `${lastWake.code ?? 'wake failed'}: ${lastWake.message ?? ''}` };
  } else {
    display = { state: replicas > e.policy.idleReplicas ? 'awake' : 'asleep', since: labelSince, reason: e.labels[LABELS.stateReason] ?? null };
  }

  return {
    service,
    hosts: e.policy.hosts,
    group: e.policy.group,
    /** `swarm-activator deploy`'s environment (pr-42, staging, …); null when the service was not deployed by it. */
    environment: e.labels[LABELS.deployEnv] ?? null,
    replicas: e.replicas,
    targetReplicas: e.policy.replicas,
    state: waking ? 'waking' : replicas > 0 ? 'awake' : 'asleep',
    display,
    idleTimeoutMs: e.policy.idleTimeoutMs,
    strategy: e.policy.strategy,
    open: traffic.open(service),
    // Set while a failed wake holds further wakes back (POST …/wake ignores it).
    wakeFailure,
    // Every activity source this replica saw (own traffic, Traefik metrics, network bytes).
    lastActivity: activity?.at ?? ownLast ?? null,
    lastActivitySource: activity ? (activity.source ?? null) : ownLast !== undefined ? 'own-traffic' : null,
    /** This replica's last wakes, newest first. */
    wakes: wakes.map((w) => ({ at: new Date(w.at).toISOString(), ms: w.ms, outcome: w.outcome, code: w.code ?? null, reason: w.reason })),
    usualWakeMs: history?.usualMs(service) ?? null,
    // The keep-awake window (label swarm-activator.keep-awake), where now stands in it, and the next one.
    keepAwake: keepAwakeView(e.policy.keepAwake, now),
    // "Keep awake until" (label keep-awake.until, the dashboard's action), while it is ahead.
    keepAwakeUntil: (e.policy.keepAwakeUntil ?? 0) > now ? new Date(e.policy.keepAwakeUntil ?? 0).toISOString() : null,
    // What sleeping saved, all time (GET /api/report for a range and per environment).
    savings: savingsView(savings),
    // Hosts this service claims together with another (the owner keeps each; see the error log).
    hostConflicts: deps.registry?.conflictsOf(service) ?? [],
    // The Traefik provider: whether the app needs its own router, what could not be published.
    traefik: deps.traefik?.viewOf(e) ?? null,
  };
}
