/**
 * wake / sleep / set-idle from the CLI, straight through Docker: the same version-checked scale
 * (with the state labels in the same spec update) the activator does, so its view stays right.
 */
import { MAX_TIMER_MS, formatDuration, parseDuration } from '../duration.js';
import { keepAwakeState, parseTimezone, parseWindows } from '../idle/keep-awake.js';
import { stateLabels } from '../apps/state.js';
import { DEFAULT_KEEP_AWAKE_LEAD_MS, LABELS, MAX_KEEP_AWAKE_LEAD_MS, groupOf, idleReplicasOf, wakeReplicasOf } from '../labels.js';
import { foldAsleep } from '../savings/savings.js';
import type { ServiceInfo, SwarmClient } from '../swarm/swarm.js';
import { waitForConvergence, type ConvergeTarget } from './converge.js';
import { InvalidInputError } from './errors.js';
import { STACK_NAMESPACE_LABEL, type StackEngine } from './stack-engine.js';

export interface ControlDeps {
  swarm: SwarmClient;
  engine: StackEngine;
  now?: () => Date;
}

export interface ResolvedApp {
  /** What the argument matched: a service (and its group), a stack, or a group. */
  matchedBy: 'service' | 'stack' | 'group';
  services: ServiceInfo[];
}

/**
 * `<app>` is a Swarm service name (its whole group is meant), a stack name (`<app>-<env>`), or a
 * group name. Only services with swarm-activator.enable=true are considered.
 */
export async function resolveApp(swarm: SwarmClient, app: string): Promise<ResolvedApp> {
  const managed = (await swarm.listServices([`${LABELS.enable}=true`])).sort((a, b) => a.name.localeCompare(b.name));
  const groupOfService = (s: ServiceInfo) => groupOf(s.labels, s.name);
  const byName = managed.find((s) => s.name === app);
  if (byName) {
    const group = groupOfService(byName);
    return { matchedBy: 'service', services: managed.filter((s) => groupOfService(s) === group) };
  }
  const byStack = managed.filter((s) => s.labels[STACK_NAMESPACE_LABEL] === app);
  if (byStack.length > 0) return { matchedBy: 'stack', services: byStack };
  const byGroup = managed.filter((s) => groupOfService(s) === app);
  if (byGroup.length > 0) return { matchedBy: 'group', services: byGroup };
  throw new InvalidInputError(`no managed app "${app}": give a service, stack or group name (see swarm-activator ls)`);
}

export interface ScaleReport {
  app: string;
  services: Array<{ name: string; from: number | null; to: number; changed: boolean }>;
  /** Time from the scale to converged; null when not waited for. */
  convergedMs: number | null;
}

export interface ScaleOptions {
  wait?: boolean;
  timeoutMs?: number;
  onProgress?: (line: string) => void;
}

async function scaleAll(deps: ControlDeps, app: string, direction: 'wake' | 'sleep', options: ScaleOptions): Promise<ScaleReport> {
  const { services } = await resolveApp(deps.swarm, app);
  const now = deps.now ?? (() => new Date());
  const at = now();
  const reason = direction === 'wake' ? 'manual wake (cli)' : 'manual sleep (cli)';
  const results = await Promise.all(
    services.map(async (s) => {
      const to = direction === 'wake' ? wakeReplicasOf(s.labels) : idleReplicasOf(s.labels);
      const res = await deps.swarm.scaleService(s.name, to, {
        // Never scale a service the other way (someone scaled it up by hand: wake leaves it).
        onlyIf: (cur) => (direction === 'wake' ? (cur.replicas ?? 0) < to : (cur.replicas ?? 0) > to),
        labels: stateLabels('manual', reason, at),
        // A wake ends an asleep period: fold it into the savings labels, as the activator does.
        ...(direction === 'wake' ? { labelsFor: (cur: ServiceInfo) => foldAsleep(cur.labels, cur.replicas, idleReplicasOf(cur.labels), at.getTime()) } : {}),
      });
      options.onProgress?.(`${s.name}: ${res.changed ? `scaled ${res.previousReplicas ?? '?'} → ${to}` : `already at ${res.previousReplicas ?? '?'} replicas`}`);
      return { name: s.name, from: res.previousReplicas, to: res.changed ? to : (res.previousReplicas ?? to), changed: res.changed };
    }),
  );
  let convergedMs: number | null = null;
  if (options.wait ?? true) {
    const targets: ConvergeTarget[] = results.map((r) => ({ service: r.name, replicas: r.to }));
    const res = await waitForConvergence(deps.engine, targets, [`${LABELS.enable}=true`], {
      since: at,
      timeoutMs: options.timeoutMs ?? 5 * 60_000,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    convergedMs = res.ms;
  }
  return { app, services: results, convergedMs };
}

export function wakeApp(deps: ControlDeps, app: string, options: ScaleOptions = {}): Promise<ScaleReport> {
  return scaleAll(deps, app, 'wake', options);
}

export function sleepApp(deps: ControlDeps, app: string, options: ScaleOptions = {}): Promise<ScaleReport> {
  return scaleAll(deps, app, 'sleep', options);
}

export interface SetIdleReport {
  app: string;
  idleTimeout: string;
  idleTimeoutMs: number;
  services: Array<{ name: string; previous: string | null }>;
}

/** Updates swarm-activator.idle-timeout only: a label-only spec update, so no task restarts. */
export async function setIdle(deps: Pick<ControlDeps, 'swarm'>, app: string, duration: string): Promise<SetIdleReport> {
  let ms: number;
  try {
    ms = parseDuration(duration);
  } catch (err) {
    throw new InvalidInputError(`<duration>: ${(err as Error).message}`);
  }
  if (ms <= 0) throw new InvalidInputError(`<duration>: "${duration}" must be longer than 0`);
  if (ms > MAX_TIMER_MS) throw new InvalidInputError(`<duration>: "${duration}" is longer than ${MAX_TIMER_MS} ms (about 24 days), the longest a timer holds`);
  const { services } = await resolveApp(deps.swarm, app);
  const value = duration.trim();
  const results = [];
  for (const s of services) {
    await deps.swarm.updateServiceLabels(s.name, { [LABELS.idleTimeout]: value });
    results.push({ name: s.name, previous: s.labels[LABELS.idleTimeout] ?? null });
  }
  return { app, idleTimeout: value, idleTimeoutMs: ms, services: results };
}

export interface KeepAwakeReport {
  app: string;
  /** The windows set, or null after `off`. */
  keepAwake: string | null;
  /** The zone written with --timezone, else the one on the service (null: the activator's default). */
  timezone: string | null;
  lead: string | null;
  /** Next window start/end (ISO), computed in `timezone` (UTC when the activator's default applies). */
  next: { start: string; end: string } | null;
  services: Array<{ name: string; previous: string | null }>;
}

export interface KeepAwakeOptions {
  timezone?: string;
  lead?: string;
  now?: () => number;
}

/**
 * Sets (or, with "off", removes) swarm-activator.keep-awake on every service of the app, with
 * .timezone and .keep-awake.lead when given: a label-only update, so no task restarts.
 */
export async function setKeepAwake(deps: Pick<ControlDeps, 'swarm'>, app: string, windows: string, options: KeepAwakeOptions = {}): Promise<KeepAwakeReport> {
  const off = windows.trim().toLowerCase() === 'off';
  let parsed: ReturnType<typeof parseWindows> = [];
  try {
    if (!off) parsed = parseWindows(windows);
  } catch (err) {
    throw new InvalidInputError(`<windows>: ${(err as Error).message}`);
  }
  let timezone: string | undefined;
  try {
    if (options.timezone !== undefined) timezone = parseTimezone(options.timezone);
  } catch (err) {
    throw new InvalidInputError(`--timezone: ${(err as Error).message}`);
  }
  let leadMs: number | undefined;
  if (options.lead !== undefined) {
    try {
      leadMs = parseDuration(options.lead);
    } catch (err) {
      throw new InvalidInputError(`--lead: ${(err as Error).message}`);
    }
    if (leadMs > MAX_KEEP_AWAKE_LEAD_MS) throw new InvalidInputError(`--lead: "${options.lead}" is longer than 1d`);
  }
  const { services } = await resolveApp(deps.swarm, app);
  const results = [];
  for (const s of services) {
    const previous = s.labels[LABELS.keepAwake] ?? null;
    if (off) {
      await deps.swarm.updateServiceLabels(s.name, {}, [LABELS.keepAwake, LABELS.timezone, LABELS.keepAwakeLead]);
    } else {
      const add: Record<string, string> = { [LABELS.keepAwake]: windows.trim() };
      if (timezone !== undefined) add[LABELS.timezone] = timezone;
      if (leadMs !== undefined) add[LABELS.keepAwakeLead] = formatDuration(leadMs);
      await deps.swarm.updateServiceLabels(s.name, add);
    }
    results.push({ name: s.name, previous });
  }
  const zone = timezone ?? services[0]?.labels[LABELS.timezone] ?? null;
  const lead = leadMs ?? DEFAULT_KEEP_AWAKE_LEAD_MS;
  let next: KeepAwakeReport['next'] = null;
  if (!off) {
    const state = keepAwakeState({ spec: windows.trim(), windows: parsed, timezone: zone ?? 'UTC', leadMs: lead }, (options.now ?? Date.now)());
    const span = state.current ?? state.next;
    if (span) next = { start: new Date(span.start).toISOString(), end: new Date(span.end).toISOString() };
  }
  return { app, keepAwake: off ? null : windows.trim(), timezone: off ? null : zone, lead: off ? null : formatDuration(lead), next, services: results };
}
