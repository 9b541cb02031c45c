/** Small hand-written fakes for the idle path's unit tests (registry, swarm, coordinator, clock). */
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { readState } from '../../src/apps/state.js';
import { parseTraefikLabels } from '../../src/apps/traefik-labels.js';
import type { AppEntry } from '../../src/discovery/app-registry.js';
import type { AppPolicy } from '../../src/labels.js';
import type { ScaleOptions, ScaleResult, ServiceInfo, TaskInfo } from '../../src/swarm/swarm.js';

export const silentLog = pino({ level: 'silent' });

export function entry(service: string, over: Omit<Partial<AppPolicy>, 'replicas'> & { targetReplicas?: number; replicas?: number | null; version?: number; labels?: Record<string, string> } = {}): AppEntry {
  const { replicas, version, labels, targetReplicas, ...policy } = over;
  return {
    policy: {
      service,
      serviceId: `id-${service}`,
      hosts: [`${service}.example.test`],
      port: 80,
      network: undefined,
      replicas: targetReplicas ?? 1,
      group: service,
      strategy: 'blocking',
      readyWhen: 'probe',
      wakeTimeoutMs: 30_000,
      idleTimeoutMs: 30_000,
      idleReplicas: 0,
      minAwakeMs: 0,
      probe: { path: '/', statuses: [{ from: 100, to: 499 }] },
      traefikServices: [service],
      http: true,
      ...policy,
    },
    replicas: replicas === undefined ? 1 : replicas,
    version: version ?? 10,
    labels: labels ?? {},
    ...modelOf(service, labels ?? {}),
    templateKey: 't1',
  };
}

/** What the registry would read from the labels besides the policy (given above). */
function modelOf(service: string, labels: Record<string, string>): Pick<AppEntry, 'routers' | 'middlewares' | 'state'> {
  const { routers, middlewares } = parseTraefikLabels(labels, service);
  return { routers, middlewares, state: readState(labels) };
}

/** The registry's map and its 'changed' event (the dashboard's live feed listens to it). */
export class FakeRegistry extends EventEmitter<{ changed: [service: string, entry: AppEntry | undefined] }> {
  synced = true;
  readonly entries = new Map<string, AppEntry>();
  constructor(entries: AppEntry[] = []) {
    super();
    for (const e of entries) this.entries.set(e.policy.service, e);
  }
  set(e: AppEntry): void {
    this.entries.set(e.policy.service, e);
    this.emit('changed', e.policy.service, e);
  }
  /** No Host is claimed twice here (the real registry's conflicts: test/unit/discovery/host-claims.test.ts). */
  conflictsOf(): [] {
    return [];
  }
  all(): AppEntry[] {
    return [...this.entries.values()];
  }
  byService(name: string): AppEntry | undefined {
    return this.entries.get(name);
  }
  groupMembers(group: string): AppEntry[] {
    return this.all().filter((e) => e.policy.group === group);
  }
}

export class FakeClock {
  constructor(public t = 1_700_000_000_000) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface ScaleCall {
  service: string;
  replicas: number;
  options: ScaleOptions;
  /** The onlyIf verdict at update time (undefined without onlyIf). */
  onlyIf: boolean | undefined;
}

/** A swarm of services with versions; scaleService behaves like DockerodeSwarm's checks. */
export class FakeSwarm {
  readonly services = new Map<string, ServiceInfo>();
  readonly scaleCalls: ScaleCall[] = [];
  readonly events: string[] = [];
  tasks = new Map<string, TaskInfo[]>();
  bytes = new Map<string, { rx: number; tx: number } | null | Error>();
  /** Runs inside inspectService / just before the update is written (race injection). */
  onInspect: ((name: string) => void) | undefined;
  beforeWrite: ((name: string) => void) | undefined;

  add(name: string, replicas: number, labels: Record<string, string> = {}, version = 10): void {
    this.services.set(name, { id: `id-${name}`, name, version, labels, replicas, updatedAt: '', templateKey: 't1' });
  }

  async inspectService(name: string): Promise<ServiceInfo | null> {
    this.events.push(`inspect:${name}`);
    this.onInspect?.(name);
    const s = this.services.get(name);
    return s ? { ...s, labels: { ...s.labels } } : null;
  }

  async scaleService(name: string, replicas: number, options: ScaleOptions = {}): Promise<ScaleResult & { conflict?: boolean }> {
    this.events.push(`scale:${name}:${replicas}`);
    const s = this.services.get(name);
    if (!s) throw new Error(`service ${name} not found`);
    this.beforeWrite?.(name);
    const onlyIf = options.onlyIf ? options.onlyIf({ ...s }) : undefined;
    this.scaleCalls.push({ service: name, replicas, options, onlyIf });
    const previousReplicas = s.replicas;
    if (s.replicas === replicas) return { changed: false, version: s.version, previousReplicas };
    if (options.expectedVersion !== undefined && options.expectedVersion !== s.version) return { changed: false, version: s.version, previousReplicas, conflict: true };
    if (onlyIf === false) return { changed: false, version: s.version, previousReplicas, conflict: true };
    s.replicas = replicas;
    s.version += 1;
    if (options.labels || options.labelsFor) s.labels = { ...s.labels, ...options.labels, ...options.labelsFor?.({ ...s, replicas: previousReplicas }) };
    return { changed: true, version: s.version, previousReplicas };
  }

  async listTasks(serviceId: string): Promise<TaskInfo[]> {
    return this.tasks.get(serviceId) ?? [];
  }

  async containerNetworkBytes(id: string): Promise<{ rx: number; tx: number } | null> {
    const v = this.bytes.get(id);
    if (v instanceof Error) throw v;
    return v ?? null;
  }
}

export class FakeCoordinator {
  readonly waking = new Set<string>();
  readonly invalidated: string[] = [];
  constructor(private readonly events?: string[]) {}
  isWaking(service: string): boolean {
    return this.waking.has(service);
  }
  invalidate(service: string): void {
    this.invalidated.push(service);
    this.events?.push(`invalidate:${service}`);
  }
}

export function runningTask(id: string, serviceId: string, containerId: string): TaskInfo {
  return { id, serviceId, nodeId: 'n1', state: 'running', desiredState: 'running', error: undefined, message: '', exitCode: undefined, containerId, createdAt: '', addresses: [] };
}
