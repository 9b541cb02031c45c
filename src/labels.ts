/**
 * Every label key the activator reads or writes, and the parser from a service's labels to its
 * AppPolicy. The single source of truth for the label schema (README "Labels" mirrors it).
 */
import { MAX_TIMER_MS, parseDuration } from './duration.js';
import { parseTimezone, parseWindows, type KeepAwakeSchedule } from './idle/keep-awake.js';
import { parseTraefikLabels, type TraefikLabels } from './apps/traefik-labels.js';
import { hostsFromRule, isValidHostname, normaliseName } from './traefik-rule.js';

export const LABEL_PREFIX = 'swarm-activator';

export const LABELS = {
  enable: `${LABEL_PREFIX}.enable`,
  hosts: `${LABEL_PREFIX}.hosts`,
  port: `${LABEL_PREFIX}.port`,
  network: `${LABEL_PREFIX}.network`,
  replicas: `${LABEL_PREFIX}.replicas`,
  group: `${LABEL_PREFIX}.group`,
  strategy: `${LABEL_PREFIX}.strategy`,
  wakeTimeout: `${LABEL_PREFIX}.wake-timeout`,
  idleTimeout: `${LABEL_PREFIX}.idle-timeout`,
  idleReplicas: `${LABEL_PREFIX}.idle-replicas`,
  minAwake: `${LABEL_PREFIX}.min-awake`,
  probePath: `${LABEL_PREFIX}.probe.path`,
  probeStatus: `${LABEL_PREFIX}.probe.status`,
  ready: `${LABEL_PREFIX}.ready`,
  traefikService: `${LABEL_PREFIX}.traefik-service`,
  /** false: WebSocket and event-stream requests go to the app's own router (issue 11); default true. */
  traefikLongLived: `${LABEL_PREFIX}.traefik.long-lived`,
  /** File name of the waiting page's template in ACTIVATOR_WAITING_PAGE_DIR. */
  waitingPageTemplate: `${LABEL_PREFIX}.waiting-page.template`,
  /** Windows in which the app is never put to sleep, e.g. "Mon-Fri 08:00-18:00" (src/idle/keep-awake.ts). */
  keepAwake: `${LABEL_PREFIX}.keep-awake`,
  /** How long before a keep-awake window the app is woken (default 2m). */
  keepAwakeLead: `${LABEL_PREFIX}.keep-awake.lead`,
  /** ISO time until which the app is never put to sleep (the dashboard's "keep awake until"). */
  keepAwakeUntil: `${LABEL_PREFIX}.keep-awake.until`,
  /** IANA time zone of the keep-awake windows (default ACTIVATOR_TIMEZONE, else UTC). */
  timezone: `${LABEL_PREFIX}.timezone`,
  /** Written by the activator with each scale: when and why the app last woke or slept. */
  stateSince: `${LABEL_PREFIX}.state.since`,
  /** What the last scale was: woken, slept, deployed or manual (src/apps/state.ts); read back, unlike the reason. */
  stateKind: `${LABEL_PREFIX}.state.kind`,
  stateReason: `${LABEL_PREFIX}.state.reason`,
  /** Written by the activator with each wake: seconds asleep, all time and per UTC day (src/savings/). */
  savingsAsleepSeconds: `${LABEL_PREFIX}.savings.asleep-seconds`,
  savingsAsleepDays: `${LABEL_PREFIX}.savings.asleep-days`,
  savingsSince: `${LABEL_PREFIX}.savings.since`,
  /** Written with each idle scale-down: peak RSS of one task while awake (bytes), when measured. */
  savingsRss: `${LABEL_PREFIX}.savings.rss`,
  /** Written by `swarm-activator deploy` on every service of a stack: which app and environment it belongs to. */
  deployApp: `${LABEL_PREFIX}.deploy.app`,
  deployEnv: `${LABEL_PREFIX}.deploy.env`,
} as const;

/** Traefik's own labels we read for the network (routers and ports: src/apps/traefik-labels.ts). */
export const TRAEFIK = {
  swarmNetwork: 'traefik.swarm.network',
  dockerNetwork: 'traefik.docker.network',
} as const;

export const STRATEGIES = ['blocking', 'waiting-page'] as const;
/** When a woken task may serve: `probe` once its container runs and the probe answers (even while
 * Swarm still says `starting` for a pending HEALTHCHECK); `healthy` only once Swarm says `running`. */
export const READY_RULES = ['probe', 'healthy'] as const;
export type ReadyRule = (typeof READY_RULES)[number];
export type Strategy = (typeof STRATEGIES)[number];

/** Defaults a service's labels fall back on; they come from the validated Config. */
export interface PolicyDefaults {
  strategy: Strategy;
  wakeTimeoutMs: number;
  idleTimeoutMs: number;
  minAwakeMs: number;
  network: string | undefined;
  /** Time zone of keep-awake windows without a timezone label (ACTIVATOR_TIMEZONE); UTC if unset. */
  timezone?: string;
}

/** ACTIVATOR_* defaults (src/config.ts), for readers without a Config: the CLI and deploy's checks. */
export const DEFAULT_POLICY: PolicyDefaults = { strategy: 'blocking', wakeTimeoutMs: 60_000, idleTimeoutMs: 30 * 60_000, minAwakeMs: 60_000, network: undefined };

export const DEFAULT_KEEP_AWAKE_LEAD_MS = 2 * 60_000;
export const MAX_KEEP_AWAKE_LEAD_MS = 86_400_000;

export interface StatusRange {
  from: number;
  to: number;
}

export interface AppPolicy {
  /** Swarm service name: the app's identity everywhere. */
  service: string;
  serviceId: string;
  hosts: string[];
  port: number;
  /** Network whose task address is used; undefined = first attachment, as Traefik does. */
  network: string | undefined;
  replicas: number;
  group: string;
  strategy: Strategy;
  wakeTimeoutMs: number;
  idleTimeoutMs: number;
  idleReplicas: number;
  minAwakeMs: number;
  probe: { path: string; statuses: StatusRange[] };
  readyWhen: ReadyRule;
  /** Traefik service names (without @swarm) whose metrics count as this app's activity. */
  traefikServices: string[];
  /** False for group members that serve no HTTP (a worker): woken with the group, never routed to. */
  http: boolean;
  /** Waiting-page template file name (TEMPLATE_FILE_NAME), looked up in ACTIVATOR_WAITING_PAGE_DIR. */
  waitingPageTemplate?: string | undefined;
  /** When the app must stay awake (keep-awake label); undefined when it has none. */
  keepAwake?: KeepAwakeSchedule | undefined;
  /** Epoch ms until which the app is never put to sleep (keep-awake.until label). */
  keepAwakeUntil?: number | undefined;
}

/** A waiting-page template as a label may name it: a plain .html file name, never a path. */
export const TEMPLATE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.html$/;

export interface LabelError {
  label: string;
  message: string;
}

export type PolicyResult = { ok: true; policy: AppPolicy } | { ok: false; errors: LabelError[] };

/** A service's hosts: our own label wins, else every Host(...) of its Traefik routers (lower case, no repeats). */
export function hostsFromLabels(labels: Record<string, string>, traefik: Pick<TraefikLabels, 'routers'> = parseTraefikLabels(labels, '')): string[] {
  const hostsLabel = labels[LABELS.hosts];
  const hosts =
    hostsLabel !== undefined
      ? hostsLabel.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)
      : traefik.routers.flatMap((router) => hostsFromRule(router.rule));
  return [...new Set(hosts)];
}

/** The group a service wakes with: its group label, else itself. */
export function groupOf(labels: Record<string, string>, service: string): string {
  return labels[LABELS.group]?.trim() || service;
}

/** Replicas a wake scales to (the replicas label, 1..100, else 1). */
export function wakeReplicasOf(labels: Record<string, string>): number {
  return lenient(labels[LABELS.replicas], 1, parseReplicas);
}

/** Replicas an idle app is scaled to (the idle-replicas label, 0..100, else 0). */
export function idleReplicasOf(labels: Record<string, string>): number {
  return lenient(labels[LABELS.idleReplicas], 0, parseIdleReplicas);
}

/** The idle timeout as the labels say now (ops may change it at any time), else `fallback`. */
export function idleTimeoutOf(labels: Record<string, string>, fallback: number): number {
  return lenient(labels[LABELS.idleTimeout], fallback, positiveDuration);
}

export function minAwakeOf(labels: Record<string, string>, fallback: number): number {
  return lenient(labels[LABELS.minAwake], fallback, boundedDuration);
}

const parseReplicas = (v: string): number => parseIntLabel(v, 1, 100);
const parseIdleReplicas = (v: string): number => parseIntLabel(v, 0, 100);

function lenient<T>(raw: string | undefined, fallback: T, parse: (v: string) => T): T {
  if (raw === undefined) return fallback;
  try {
    return parse(raw);
  } catch {
    return fallback;
  }
}

/** "200-399,404" → ranges; "<500" is accepted as shorthand for 100-499. */
export function parseStatusRanges(text: string): StatusRange[] {
  const ranges: StatusRange[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = /^<\s*(\d{3})$/.exec(part))) ranges.push({ from: 100, to: Number(m[1]) - 1 });
    else if ((m = /^(\d{3})\s*-\s*(\d{3})$/.exec(part))) ranges.push({ from: Number(m[1]), to: Number(m[2]) });
    else if ((m = /^(\d{3})$/.exec(part))) ranges.push({ from: Number(m[1]), to: Number(m[1]) });
    else throw new Error(`invalid status "${part}" (use e.g. 200-399,404 or <500)`);
  }
  for (const r of ranges) {
    if (r.from < 100 || r.to > 599 || r.from > r.to) throw new Error(`invalid status range ${r.from}-${r.to}`);
  }
  return ranges;
}

export function statusAccepted(status: number, ranges: StatusRange[]): boolean {
  return ranges.some((r) => status >= r.from && status <= r.to);
}

function parseIntLabel(value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw new Error(`"${value}" is not a whole number`);
  const n = Number(value.trim());
  if (n < min || n > max) throw new Error(`${n} is outside ${min}..${max}`);
  return n;
}

/**
 * Labels → AppPolicy. Never throws: every problem is returned with the label that caused it,
 * so discovery can skip the service and log exactly what to fix.
 */
export function parsePolicy(
  service: { id: string; name: string; labels: Record<string, string> },
  defaults: PolicyDefaults,
  traefik: TraefikLabels = parseTraefikLabels(service.labels, service.name),
): PolicyResult {
  const labels = service.labels;
  const errors: LabelError[] = [];
  const field = <T>(label: string, fallback: T, parse: (v: string) => T): T => {
    const raw = labels[label];
    if (raw === undefined) return fallback;
    try {
      return parse(raw);
    } catch (err) {
      errors.push({ label, message: (err as Error).message });
      return fallback;
    }
  };

  const hostsLabel = labels[LABELS.hosts];
  const hosts = hostsFromLabels(labels, traefik);
  const hasPortSource = labels[LABELS.port] !== undefined || traefik.servicePorts.length > 0;
  // A member of a group with neither host nor port is a worker: it wakes with the group.
  const http = !(hosts.length === 0 && !hasPortSource && labels[LABELS.group] !== undefined);
  const badHost = hosts.find((h) => !isValidHostname(h));
  if (badHost !== undefined) {
    errors.push({ label: hostsLabel !== undefined ? LABELS.hosts : 'traefik.http.routers.*.rule', message: `"${badHost}" is not a valid host name` });
  } else if (hosts.length === 0 && http) {
    errors.push({ label: LABELS.hosts, message: `no host: set ${LABELS.hosts} or a traefik.http.routers.<name>.rule with Host(\`...\`)` });
  }

  // Port: our label wins, else the single port of the service's Traefik load balancers.
  const traefikServiceNames = traefik.servicePorts.map((s) => s.name);
  const traefikPorts = new Set(traefik.servicePorts.map((s) => s.port.trim()));
  let port = 0;
  if (!http) {
    // worker: no port needed
  } else if (labels[LABELS.port] !== undefined) {
    port = field(LABELS.port, 0, (v) => parseIntLabel(v, 1, 65535));
  } else if (traefikPorts.size === 1) {
    const [only] = [...traefikPorts];
    try {
      port = parseIntLabel(only as string, 1, 65535);
    } catch (err) {
      errors.push({ label: 'traefik.http.services.*.loadbalancer.server.port', message: (err as Error).message });
    }
  } else if (traefikPorts.size > 1) {
    errors.push({ label: LABELS.port, message: `Traefik load balancers name several ports (${[...traefikPorts].join(', ')}); set ${LABELS.port}` });
  } else {
    errors.push({ label: LABELS.port, message: `no port: set ${LABELS.port} or traefik.http.services.<name>.loadbalancer.server.port` });
  }

  const network = labels[LABELS.network] ?? labels[TRAEFIK.swarmNetwork] ?? labels[TRAEFIK.dockerNetwork] ?? defaults.network;
  const strategy = field<Strategy>(LABELS.strategy, defaults.strategy, (v) => {
    const s = v.trim();
    if (!(STRATEGIES as readonly string[]).includes(s)) throw new Error(`"${v}" is not one of ${STRATEGIES.join(', ')}`);
    return s as Strategy;
  });
  const probePath = field(LABELS.probePath, '/', (v) => {
    if (!v.startsWith('/')) throw new Error(`"${v}" must start with /`);
    return v;
  });
  const readyWhen = field<ReadyRule>(LABELS.ready, 'probe', (v) => {
    const r = v.trim().toLowerCase();
    if (!(READY_RULES as readonly string[]).includes(r)) throw new Error(`"${v}" is not one of ${READY_RULES.join(', ')}`);
    return r as ReadyRule;
  });
  const traefikServiceLabel = labels[LABELS.traefikService];
  const keepAwake = parseKeepAwake(labels, defaults.timezone ?? 'UTC', errors);
  const policy: AppPolicy = {
    service: service.name,
    serviceId: service.id,
    hosts,
    port,
    network: network?.trim() || undefined,
    replicas: field(LABELS.replicas, 1, parseReplicas),
    group: groupOf(labels, service.name),
    strategy,
    wakeTimeoutMs: field(LABELS.wakeTimeout, defaults.wakeTimeoutMs, positiveDuration),
    idleTimeoutMs: field(LABELS.idleTimeout, defaults.idleTimeoutMs, positiveDuration),
    idleReplicas: field(LABELS.idleReplicas, 0, parseIdleReplicas),
    minAwakeMs: field(LABELS.minAwake, defaults.minAwakeMs, boundedDuration),
    probe: { path: probePath, statuses: field(LABELS.probeStatus, [{ from: 100, to: 499 }], parseStatusRanges) },
    readyWhen,
    traefikServices: traefikServiceLabel
      ? traefikServiceLabel.split(',').map((s) => s.trim()).filter(Boolean)
      : traefikServiceNames.length > 0
        ? [...new Set(traefikServiceNames)]
        : [normaliseName(service.name)],
    http,
    waitingPageTemplate: field(LABELS.waitingPageTemplate, undefined, (v) => {
      const name = v.trim();
      if (name.length > 100 || !TEMPLATE_FILE_NAME.test(name)) throw new Error(`"${v}" must be a file name ending in .html (letters, digits, . _ -; no path)`);
      return name;
    }),
    keepAwake,
    keepAwakeUntil: field(LABELS.keepAwakeUntil, undefined, (v) => {
      const at = Date.parse(v.trim());
      if (!Number.isFinite(at)) throw new Error(`"${v}" is not an ISO date and time (e.g. 2026-12-01T18:00:00Z)`);
      return at;
    }),
  };
  return errors.length > 0 ? { ok: false, errors } : { ok: true, policy };
}

/** The keep-awake labels → a schedule; problems go to `errors`, each naming its label. */
export function parseKeepAwake(labels: Record<string, string>, defaultTimezone: string, errors: LabelError[] = []): KeepAwakeSchedule | undefined {
  const spec = labels[LABELS.keepAwake]?.trim();
  const zoneLabel = labels[LABELS.timezone];
  let timezone = defaultTimezone;
  if (zoneLabel !== undefined) {
    try {
      timezone = parseTimezone(zoneLabel);
    } catch (err) {
      errors.push({ label: LABELS.timezone, message: (err as Error).message });
    }
  }
  let leadMs = DEFAULT_KEEP_AWAKE_LEAD_MS;
  const leadLabel = labels[LABELS.keepAwakeLead];
  if (leadLabel !== undefined) {
    try {
      leadMs = parseDuration(leadLabel);
      if (leadMs > MAX_KEEP_AWAKE_LEAD_MS) throw new Error(`"${leadLabel}" is longer than 1d`);
    } catch (err) {
      errors.push({ label: LABELS.keepAwakeLead, message: (err as Error).message });
    }
  }
  if (spec === undefined || spec === '' || spec.toLowerCase() === 'off') return undefined;
  try {
    return { spec, windows: parseWindows(spec), timezone, leadMs };
  } catch (err) {
    errors.push({ label: LABELS.keepAwake, message: (err as Error).message });
    return undefined;
  }
}

/** Node's timers fire at once from 2^31 ms on: a longer duration would be "now", not "never". */
function boundedDuration(v: string): number {
  const ms = parseDuration(v);
  if (ms > MAX_TIMER_MS) throw new Error(`"${v}" is longer than ${MAX_TIMER_MS} ms (about 24 days), the longest a timer holds`);
  return ms;
}

function positiveDuration(v: string): number {
  const ms = boundedDuration(v);
  if (ms <= 0) throw new Error(`"${v}" must be longer than 0`);
  return ms;
}
