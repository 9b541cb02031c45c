/**
 * What sleeping saved: time asleep × the memory the app would have held. Pure functions over a
 * service's labels, so the CLI (from Docker) and the admin API (from the registry) agree.
 *
 * The figures live with the service, in labels written in the same spec update as each scale:
 *   - a scale-down writes state.since (asleep from then) and, when measured, savings.rss;
 *   - a wake folds the asleep period that ends into savings.asleep-seconds (all time) and
 *     savings.asleep-days (seconds per UTC day, the last 92 days), in the scale-up's update.
 * So nothing is lost when an activator restarts; an app asleep now counts up to now.
 */
import { readState } from '../apps/state.js';
import { LABELS, groupOf } from '../labels.js';

export const DAYS_KEPT = 92;
const DAY_MS = 86_400_000;
export const GIB = 1024 ** 3;

export type MemorySource = 'reservation' | 'limit' | 'rss' | 'unknown';

export interface ServiceMemory {
  /** TaskTemplate.Resources.Reservations.MemoryBytes, when set. */
  reservation?: number | undefined;
  /** TaskTemplate.Resources.Limits.MemoryBytes, when set. */
  limit?: number | undefined;
}

/** Start of the asleep period the app is in now, from the state labels; undefined when awake or unknown. */
export function asleepSince(labels: Record<string, string>, replicas: number | null, idleReplicas: number): number | undefined {
  if (replicas === null || replicas > idleReplicas) return undefined;
  const state = readState(labels);
  return state && state.kind !== 'woken' ? state.since : undefined;
}

/** "2026-11-30:3600,2026-12-01:120" → day → seconds; malformed parts are ignored. */
export function parseDays(text: string | undefined): Map<string, number> {
  const days = new Map<string, number>();
  for (const part of (text ?? '').split(',')) {
    const m = /^(\d{4}-\d{2}-\d{2}):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (m) days.set(m[1] as string, (days.get(m[1] as string) ?? 0) + Number(m[2]));
  }
  return days;
}

export function formatDays(days: Map<string, number>, now: number): string {
  const oldest = utcDay(now - (DAYS_KEPT - 1) * DAY_MS);
  return [...days.entries()]
    .filter(([day, s]) => day >= oldest && s > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([day, s]) => `${day}:${Math.round(s)}`)
    .join(',');
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** [from, to) cut at UTC midnights: day → seconds. */
export function splitByUtcDay(from: number, to: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let t = from; t < to; ) {
    const next = Math.min(to, (Math.floor(t / DAY_MS) + 1) * DAY_MS);
    out.set(utcDay(t), (out.get(utcDay(t)) ?? 0) + (next - t) / 1000);
    t = next;
  }
  return out;
}

/**
 * Labels a wake writes with its scale-up: the asleep period that ends now folded into the
 * totals. Empty when the app was not asleep (or since when is unknown).
 */
export function foldAsleep(labels: Record<string, string>, replicas: number | null, idleReplicas: number, now: number): Record<string, string> {
  const since = asleepSince(labels, replicas, idleReplicas);
  if (since === undefined || now <= since) return {};
  const days = parseDays(labels[LABELS.savingsAsleepDays]);
  for (const [day, s] of splitByUtcDay(since, now)) days.set(day, (days.get(day) ?? 0) + s);
  const total = Number(labels[LABELS.savingsAsleepSeconds] ?? 0);
  return {
    [LABELS.savingsAsleepSeconds]: String(Math.round((Number.isFinite(total) ? total : 0) + (now - since) / 1000)),
    [LABELS.savingsAsleepDays]: formatDays(days, now),
    [LABELS.savingsSince]: labels[LABELS.savingsSince] ?? new Date(since).toISOString(),
  };
}

/** The memory one task of the app holds: its reservation, else its limit, else the RSS measured while awake. */
export function memoryPerTask(memory: ServiceMemory | undefined, labels: Record<string, string>, measuredRssBytes?: number): { bytes: number | null; source: MemorySource } {
  if (memory?.reservation) return { bytes: memory.reservation, source: 'reservation' };
  if (memory?.limit) return { bytes: memory.limit, source: 'limit' };
  // Measured in this awake stretch (the activator's live figure) before the one the last sleep wrote.
  if (measuredRssBytes !== undefined && measuredRssBytes > 0) return { bytes: measuredRssBytes, source: 'rss' };
  const rss = Number(labels[LABELS.savingsRss]);
  if (labels[LABELS.savingsRss] !== undefined && Number.isFinite(rss) && rss > 0) return { bytes: rss, source: 'rss' };
  return { bytes: null, source: 'unknown' };
}

export interface SavingsInput {
  service: string;
  labels: Record<string, string>;
  replicas: number | null;
  wakeReplicas: number;
  idleReplicas: number;
  memory?: ServiceMemory | undefined;
  /** Peak RSS of one task measured in the current awake stretch (activator only). */
  measuredRssBytes?: number | undefined;
}

/** The savings view of a registry entry. */
export function savingsInput(
  entry: { policy: { service: string; replicas: number; idleReplicas: number }; labels: Record<string, string>; replicas: number | null; memory?: ServiceMemory | undefined },
  measuredRssBytes?: number,
): SavingsInput {
  return {
    service: entry.policy.service,
    labels: entry.labels,
    replicas: entry.replicas,
    wakeReplicas: entry.policy.replicas,
    idleReplicas: entry.policy.idleReplicas,
    memory: entry.memory,
    measuredRssBytes,
  };
}

export interface AppSavings {
  service: string;
  app: string | null;
  env: string;
  stack: string | null;
  group: string;
  asleepNow: boolean;
  /** Seconds asleep in the report's range (all time without --since). */
  asleepSeconds: number;
  /** Memory of one task, and where that figure comes from. */
  memoryPerTaskBytes: number | null;
  memorySource: MemorySource;
  /** Tasks a sleep frees: wake replicas − idle replicas. */
  tasksFreed: number;
  /** asleepSeconds × memory × tasks freed; null when the memory is unknown. */
  savedByteSeconds: number | null;
  savedGiBHours: number | null;
}

export interface SavingsRange {
  /** Start of the range (epoch ms); undefined: all time. Day buckets count from its UTC day. */
  from?: number | undefined;
  to: number;
}

const STACK_LABEL = 'com.docker.stack.namespace';

export function appSavings(input: SavingsInput, range: SavingsRange): AppSavings {
  const { labels } = input;
  const now = range.to;
  const from = range.from === undefined ? undefined : Date.parse(`${utcDay(range.from)}T00:00:00Z`);
  let seconds: number;
  if (from === undefined) {
    const total = Number(labels[LABELS.savingsAsleepSeconds] ?? 0);
    seconds = Number.isFinite(total) ? total : 0;
  } else {
    const first = utcDay(from);
    seconds = 0;
    for (const [day, s] of parseDays(labels[LABELS.savingsAsleepDays])) if (day >= first) seconds += s;
  }
  const since = asleepSince(labels, input.replicas, input.idleReplicas);
  if (since !== undefined && now > since) seconds += (now - Math.max(since, from ?? since)) / 1000;
  const mem = memoryPerTask(input.memory, labels, input.measuredRssBytes);
  const tasksFreed = Math.max(0, input.wakeReplicas - input.idleReplicas);
  const saved = mem.bytes === null ? null : seconds * mem.bytes * tasksFreed;
  return {
    service: input.service,
    app: labels[LABELS.deployApp] ?? null,
    env: labels[LABELS.deployEnv] ?? labels[STACK_LABEL] ?? '-',
    stack: labels[STACK_LABEL] ?? null,
    group: groupOf(labels, input.service),
    asleepNow: since !== undefined,
    asleepSeconds: Math.round(seconds * 10) / 10,
    memoryPerTaskBytes: mem.bytes,
    memorySource: mem.source,
    tasksFreed,
    savedByteSeconds: saved === null ? null : Math.round(saved),
    savedGiBHours: saved === null ? null : round3(saved / GIB / 3600),
  };
}

export interface EnvironmentSavings {
  env: string;
  apps: number;
  asleepSeconds: number;
  savedGiBHours: number;
  /** Apps whose memory is unknown (not counted in savedGiBHours). */
  unknownMemory: number;
}

export interface SavingsReport {
  /** Start of the range (a UTC midnight: asleep time is kept per UTC day), null for all time. */
  from: string | null;
  to: string;
  apps: AppSavings[];
  environments: EnvironmentSavings[];
  total: { apps: number; savedGiBHours: number; unknownMemory: number };
}

export function savingsReport(inputs: SavingsInput[], range: SavingsRange): SavingsReport {
  const apps = inputs.map((i) => appSavings(i, range)).sort((a, b) => a.env.localeCompare(b.env) || a.service.localeCompare(b.service));
  const envs = new Map<string, EnvironmentSavings>();
  for (const a of apps) {
    const e = envs.get(a.env) ?? { env: a.env, apps: 0, asleepSeconds: 0, savedGiBHours: 0, unknownMemory: 0 };
    e.apps += 1;
    e.asleepSeconds = Math.round((e.asleepSeconds + a.asleepSeconds) * 10) / 10;
    if (a.savedGiBHours === null) e.unknownMemory += 1;
    else e.savedGiBHours = round3(e.savedGiBHours + a.savedGiBHours);
    envs.set(a.env, e);
  }
  const environments = [...envs.values()];
  return {
    from: range.from === undefined ? null : `${utcDay(range.from)}T00:00:00.000Z`,
    to: new Date(range.to).toISOString(),
    apps,
    environments,
    total: {
      apps: apps.length,
      savedGiBHours: round3(environments.reduce((s, e) => s + e.savedGiBHours, 0)),
      unknownMemory: environments.reduce((s, e) => s + e.unknownMemory, 0),
    },
  };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
