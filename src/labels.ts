/**
 * Every label key the activator reads or writes, and the parser from a service's labels to its
 * AppPolicy. The single source of truth for the label schema (README "Labels" mirrors it).
 */
import { parseDuration } from './duration.js';
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
  /** Written by the activator with each scale: when and why the app last woke or slept. */
  stateSince: `${LABEL_PREFIX}.state.since`,
  stateReason: `${LABEL_PREFIX}.state.reason`,
  /** Written by `swarm-activator deploy` on every service of a stack: which app and environment it belongs to. */
  deployApp: `${LABEL_PREFIX}.deploy.app`,
  deployEnv: `${LABEL_PREFIX}.deploy.env`,
} as const;

/** Traefik's own labels we read for hosts, port and network. */
export const TRAEFIK = {
  routerRule: /^traefik\.http\.routers\.([^.]+)\.rule$/,
  servicePort: /^traefik\.http\.services\.([^.]+)\.loadbalancer\.server\.port$/,
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
}

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
}

export interface LabelError {
  label: string;
  message: string;
}

export type PolicyResult = { ok: true; policy: AppPolicy } | { ok: false; errors: LabelError[] };

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

  // Hosts: our own label wins, else every Host(...) of the service's Traefik routers.
  let hosts: string[];
  const hostsLabel = labels[LABELS.hosts];
  if (hostsLabel !== undefined) {
    hosts = hostsLabel.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  } else {
    hosts = Object.entries(labels)
      .filter(([key]) => TRAEFIK.routerRule.test(key))
      .flatMap(([, rule]) => hostsFromRule(rule));
  }
  hosts = [...new Set(hosts)];
  const hasPortSource = labels[LABELS.port] !== undefined || Object.keys(labels).some((k) => TRAEFIK.servicePort.test(k));
  // A member of a group with neither host nor port is a worker: it wakes with the group.
  const http = !(hosts.length === 0 && !hasPortSource && labels[LABELS.group] !== undefined);
  const badHost = hosts.find((h) => !isValidHostname(h));
  if (badHost !== undefined) {
    errors.push({ label: hostsLabel !== undefined ? LABELS.hosts : 'traefik.http.routers.*.rule', message: `"${badHost}" is not a valid host name` });
  } else if (hosts.length === 0 && http) {
    errors.push({ label: LABELS.hosts, message: `no host: set ${LABELS.hosts} or a traefik.http.routers.<name>.rule with Host(\`...\`)` });
  }

  // Port: our label wins, else the single port of the service's Traefik load balancers.
  const traefikServiceNames: string[] = [];
  const traefikPorts = new Set<string>();
  for (const [key, value] of Object.entries(labels)) {
    const m = TRAEFIK.servicePort.exec(key);
    if (m) {
      traefikServiceNames.push(m[1] as string);
      traefikPorts.add(value.trim());
    }
  }
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
  const policy: AppPolicy = {
    service: service.name,
    serviceId: service.id,
    hosts,
    port,
    network: network?.trim() || undefined,
    replicas: field(LABELS.replicas, 1, (v) => parseIntLabel(v, 1, 100)),
    group: labels[LABELS.group]?.trim() || service.name,
    strategy,
    wakeTimeoutMs: field(LABELS.wakeTimeout, defaults.wakeTimeoutMs, positiveDuration),
    idleTimeoutMs: field(LABELS.idleTimeout, defaults.idleTimeoutMs, positiveDuration),
    idleReplicas: field(LABELS.idleReplicas, 0, (v) => parseIntLabel(v, 0, 100)),
    minAwakeMs: field(LABELS.minAwake, defaults.minAwakeMs, parseDuration),
    probe: { path: probePath, statuses: field(LABELS.probeStatus, [{ from: 100, to: 499 }], parseStatusRanges) },
    readyWhen,
    traefikServices: traefikServiceLabel
      ? traefikServiceLabel.split(',').map((s) => s.trim()).filter(Boolean)
      : traefikServiceNames.length > 0
        ? [...new Set(traefikServiceNames)]
        : [normaliseName(service.name)],
    http,
  };
  return errors.length > 0 ? { ok: false, errors } : { ok: true, policy };
}

function positiveDuration(v: string): number {
  const ms = parseDuration(v);
  if (ms <= 0) throw new Error(`"${v}" must be longer than 0`);
  return ms;
}
