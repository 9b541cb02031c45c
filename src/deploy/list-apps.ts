/**
 * `ls`: every managed service with its state, replicas, hosts, idle timeout, last activity and how
 * long it has been in its state, from Docker alone (the state labels the activator writes), or
 * enriched with the activator's admin API (/api/apps) when its URL is given.
 */
import { formatDuration, parseDuration } from '../duration.js';
import { parseApp } from '../apps/parse-app.js';
import { DEFAULT_POLICY, LABELS, groupOf, idleReplicasOf, wakeReplicasOf } from '../labels.js';
import type { ServiceInfo, SwarmClient, TaskInfo } from '../swarm/swarm.js';
import { STACK_NAMESPACE_LABEL } from './stack-engine.js';

export type AppState = 'asleep' | 'waking' | 'awake';

export interface AppRow {
  service: string;
  stack: string | null;
  group: string;
  kind: 'http' | 'worker';
  state: AppState;
  /** Tasks running now. */
  running: number;
  /** Desired replicas now. */
  replicas: number;
  /** What a wake scales to. */
  wakeReplicas: number;
  hosts: string[];
  /** As set on the service (label), or null when the activator's default applies. */
  idleTimeout: string | null;
  /** Effective timeout from the activator, when it was asked; else parsed from the label. */
  idleTimeoutMs: number | null;
  /** Epoch ms of the last request the activator saw; null when unknown. */
  lastActivity: number | null;
  /** When the service last woke or slept (the activator's / the CLI's state label). */
  since: string | null;
  reason: string | null;
  /** Open connections (activator only). */
  open: number | null;
  /** Label problems that stop the activator from managing it. */
  problems: string[];
}

/** One element of the activator's GET /api/apps. */
export interface ActivatorApp {
  service: string;
  hosts?: string[];
  group?: string;
  replicas?: number | null;
  state?: string;
  idleTimeoutMs?: number;
  open?: number;
  lastActivity?: number | null;
}

export interface ListOptions {
  activatorUrl?: string;
  /** The activator's admin token (sent as Bearer). */
  token?: string;
  fetchTimeoutMs?: number;
}

export interface ListResult {
  apps: AppRow[];
  /** Whether the activator was asked and answered. */
  activator: 'not asked' | 'ok' | 'unreachable';
  warnings: string[];
}

export async function listApps(swarm: SwarmClient, options: ListOptions = {}): Promise<ListResult> {
  const warnings: string[] = [];
  const services = (await swarm.listServices([`${LABELS.enable}=true`])).sort((a, b) => a.name.localeCompare(b.name));
  const tasks = await Promise.all(services.map((s) => swarm.listTasks(s.id)));
  let remote: Map<string, ActivatorApp> | undefined;
  let activator: ListResult['activator'] = 'not asked';
  if (options.activatorUrl) {
    try {
      remote = await fetchActivatorApps(options.activatorUrl, options.token, options.fetchTimeoutMs ?? 5000);
      activator = 'ok';
    } catch (err) {
      activator = 'unreachable';
      warnings.push(`activator at ${options.activatorUrl} did not answer (${(err as Error).message}); last activity unknown`);
    }
  }
  return { apps: services.map((s, i) => toRow(s, tasks[i] ?? [], remote?.get(s.name))), activator, warnings };
}

export function toRow(s: ServiceInfo, tasks: TaskInfo[], remote: ActivatorApp | undefined): AppRow {
  const parsed = parseApp(s, DEFAULT_POLICY);
  const running = tasks.filter((t) => t.state === 'running' && t.desiredState === 'running').length;
  const replicas = s.replicas ?? 0;
  const idle = idleReplicasOf(s.labels);
  let state: AppState = replicas <= idle ? 'asleep' : running >= replicas ? 'awake' : 'waking';
  if (remote?.state === 'waking') state = 'waking';
  const idleLabel = s.labels[LABELS.idleTimeout] ?? null;
  let idleMs: number | null = remote?.idleTimeoutMs ?? null;
  if (idleMs === null && idleLabel !== null) {
    try {
      idleMs = parseDuration(idleLabel);
    } catch {
      idleMs = null;
    }
  }
  return {
    service: s.name,
    stack: s.labels[STACK_NAMESPACE_LABEL] ?? null,
    group: groupOf(s.labels, s.name),
    kind: parsed.ok ? (parsed.app.policy.http ? 'http' : 'worker') : s.labels[LABELS.group] && !Object.keys(s.labels).some((k) => k.startsWith('traefik.http.')) ? 'worker' : 'http',
    state,
    running,
    replicas,
    wakeReplicas: wakeReplicasOf(s.labels),
    hosts: remote?.hosts ?? (parsed.ok ? parsed.app.policy.hosts : []),
    idleTimeout: idleLabel,
    idleTimeoutMs: idleMs,
    lastActivity: remote?.lastActivity ?? null,
    since: s.labels[LABELS.stateSince] ?? null,
    reason: s.labels[LABELS.stateReason] ?? null,
    open: remote?.open ?? null,
    problems: parsed.ok ? [] : parsed.errors.map((e) => `${e.label}: ${e.message}`),
  };
}

async function fetchActivatorApps(url: string, token: string | undefined, timeoutMs: number): Promise<Map<string, ActivatorApp>> {
  const res = await fetch(new URL('/api/apps', url), { signal: AbortSignal.timeout(timeoutMs), headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status === 401 || res.status === 403) {
    throw new Error(`HTTP ${res.status}: ${token ? 'the activator refused the token' : 'no token given: pass --token-file or set SWARM_ACTIVATOR_TOKEN(_FILE)'}`);
  }
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body: unknown = await res.json();
  if (!Array.isArray(body)) throw new Error('GET /api/apps did not return a list');
  const map = new Map<string, ActivatorApp>();
  for (const item of body) {
    if (typeof item === 'object' && item !== null && typeof (item as { service?: unknown }).service === 'string') {
      map.set((item as ActivatorApp).service, item as ActivatorApp);
    }
  }
  return map;
}

/** "asleep for 3h (idle 30m)", "awake for 12m", "asleep (since unknown)". */
export function describeSince(row: AppRow, now: number): string {
  const idle = row.idleTimeoutMs !== null ? ` (idle ${formatDuration(row.idleTimeoutMs)})` : '';
  if (!row.since || Number.isNaN(Date.parse(row.since))) return `${row.state} (since unknown)`;
  const ms = Math.max(0, now - Date.parse(row.since));
  return `${row.state} for ${formatAge(ms)}${row.state === 'asleep' ? idle : ''}`;
}

/** Coarse age: "45s", "12m", "3h", "3h20m", "2d4h". */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
}
