/**
 * Host → app map, built from the labels of Swarm services and kept current from service events,
 * with a periodic full resync as a safety net for missed events.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AppModel } from '../apps/model.js';
import { parseApp } from '../apps/parse-app.js';
import { LABELS, type PolicyDefaults } from '../labels.js';
import type { ServiceEvent, ServiceInfo, SwarmClient } from '../swarm/swarm.js';

/** A managed service: its model (policy, Traefik routers and middlewares, state) and what Swarm says of it now. */
export interface AppEntry extends AppModel {
  /** Desired replicas as last seen (null for global services). */
  replicas: number | null;
  version: number;
  labels: Record<string, string>;
  /** ServiceInfo.templateKey: changes on a redeploy, not on our scale or label writes. */
  templateKey: string;
  /** Memory reservation/limit of one task, when set (what sleeping saves). */
  memory?: ServiceInfo['memory'];
  /**
   * The deployment the service belongs to (its stack, else the app/env deploy wrote; '' for
   * neither): groups never span deployments, so one stack cannot join another's group.
   */
  deployment?: string;
  /** When the service was created (ISO), for Host claims: the first owner keeps the Host. */
  createdAt?: string;
}

/** A Host two or more services claim: the owner keeps it, the others are ignored for it. */
export interface HostConflict {
  host: string;
  owner: string;
  claimants: string[];
}

export interface AppRegistryOptions {
  swarm: SwarmClient;
  defaults: PolicyDefaults;
  selector?: { key: string; value: string } | undefined;
  resyncIntervalMs: number;
  log: Logger;
  /** A task's container started on this engine (the event stream's container starts: readiness.ts). */
  onTaskContainerStart?: ((taskId: string) => void) | undefined;
}

export interface AppRegistryEvents {
  /** A service's entry was added, changed or removed (entry undefined). */
  changed: [service: string, entry: AppEntry | undefined, event: ServiceEvent | undefined];
  synced: [count: number];
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

export class AppRegistry extends EventEmitter<AppRegistryEvents> {
  private byServiceName = new Map<string, AppEntry>();
  private serviceNameById = new Map<string, string>();
  private hosts = new Map<string, AppEntry>();
  private groups = new Map<string, AppEntry[]>();
  private conflicts = new Map<string, HostConflict>();
  /** Label problems already logged, per service ID: log again only when they change. */
  private readonly loggedProblems = new Map<string, string>();
  private readonly loggedConflicts = new Set<string>();
  private abort = new AbortController();
  private resyncTimer: NodeJS.Timeout | undefined;
  private watching: Promise<void> | undefined;
  private syncedOnce = false;

  constructor(private readonly options: AppRegistryOptions) {
    super();
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  /** First full sync (errors are logged, not thrown: the resync retries), then events + resync. */
  async start(): Promise<void> {
    await this.resync().catch((err: unknown) => this.options.log.error({ err }, 'initial service discovery failed; will retry'));
    this.watching = this.watchLoop();
    this.resyncTimer = setInterval(() => {
      this.resync().catch((err: unknown) => this.options.log.warn({ err }, 'service resync failed'));
    }, this.options.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.abort.abort();
    await this.watching;
  }

  byHost(hostHeader: string | undefined): AppEntry | undefined {
    if (!hostHeader) return undefined;
    return this.hosts.get(normaliseHost(hostHeader));
  }

  byService(name: string): AppEntry | undefined {
    return this.byServiceName.get(name);
  }

  /** The members of a group within one deployment (AppEntry.deployment; '' when not given). */
  groupMembers(group: string, deployment = ''): AppEntry[] {
    return this.groups.get(groupKey(deployment, group)) ?? [];
  }

  /** Hosts claimed by more than one service, with the owner that keeps each. */
  hostConflicts(): HostConflict[] {
    return [...this.conflicts.values()];
  }

  /** The conflicts a service is part of (as owner or as a claimant that was refused). */
  conflictsOf(service: string): HostConflict[] {
    return this.hostConflicts().filter((c) => c.owner === service || c.claimants.includes(service));
  }

  all(): AppEntry[] {
    return [...this.byServiceName.values()];
  }

  private filters(): string[] {
    const filters = [`${LABELS.enable}=true`];
    const sel = this.options.selector;
    if (sel) filters.push(`${sel.key}=${sel.value}`);
    return filters;
  }

  private matchesSelector(labels: Record<string, string>): boolean {
    const sel = this.options.selector;
    return labels[LABELS.enable] === 'true' && (!sel || labels[sel.key] === sel.value);
  }

  async resync(): Promise<void> {
    const services = await this.options.swarm.listServices(this.filters());
    const next = new Map<string, AppEntry>();
    const previous = this.byServiceName;
    for (const svc of services) {
      const entry = this.toEntry(svc);
      const known = previous.get(svc.name);
      // An event may have brought newer data than this snapshot (taken before it): keep the newer.
      if (entry) next.set(svc.name, known && known.version > entry.version ? known : entry);
    }
    this.byServiceName = next;
    this.serviceNameById = new Map(services.map((s) => [s.id, s.name]));
    this.rebuildIndexes();
    for (const [name, entry] of next) {
      const old = previous.get(name);
      if (!old || old.version !== entry.version) this.emit('changed', name, entry, undefined);
    }
    for (const name of previous.keys()) if (!next.has(name)) this.emit('changed', name, undefined, undefined);
    const current = new Set(services.map((svc) => svc.id));
    for (const id of this.loggedProblems.keys()) if (!current.has(id)) this.loggedProblems.delete(id);
    this.syncedOnce = true;
    this.emit('synced', next.size);
  }

  private toEntry(svc: ServiceInfo): AppEntry | undefined {
    if (!this.matchesSelector(svc.labels)) return undefined;
    const result = parseApp(svc, this.options.defaults);
    if (!result.ok) {
      const signature = JSON.stringify(result.errors);
      if (this.loggedProblems.get(svc.id) !== signature) {
        this.loggedProblems.set(svc.id, signature);
        for (const problem of result.errors) {
          this.options.log.error({ service: svc.name, label: problem.label, problem: problem.message }, 'skipping service with invalid labels');
        }
      }
      return undefined;
    }
    return { ...result.app, replicas: svc.replicas, version: svc.version, labels: svc.labels, templateKey: svc.templateKey, memory: svc.memory, deployment: deploymentOf(svc.labels), ...(svc.createdAt ? { createdAt: svc.createdAt } : {}) };
  }

  private rebuildIndexes(): void {
    const hosts = new Map<string, AppEntry>();
    const groups = new Map<string, AppEntry[]>();
    const conflicts = new Map<string, HostConflict>();
    // The first owner keeps a Host: the service that already had it (while it still claims it),
    // else the one created first (then by name, so every activator replica decides alike).
    for (const [host, kept] of this.hosts) {
      const current = this.byServiceName.get(kept.policy.service);
      if (current?.policy.hosts.includes(host)) hosts.set(host, current);
    }
    const ordered = [...this.byServiceName.values()].sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.policy.service.localeCompare(b.policy.service));
    for (const entry of ordered) {
      for (const host of entry.policy.hosts) {
        const owner = hosts.get(host);
        if (!owner) hosts.set(host, entry);
        else if (owner.policy.service !== entry.policy.service) this.noteConflict(conflicts, host, owner, entry);
      }
      const key = groupKey(entry.deployment ?? '', entry.policy.group);
      const members = groups.get(key) ?? [];
      members.push(entry);
      groups.set(key, members);
    }
    this.hosts = hosts;
    this.groups = groups;
    this.conflicts = conflicts;
    this.logGroupsAcrossDeployments(groups);
  }

  private noteConflict(conflicts: Map<string, HostConflict>, host: string, owner: AppEntry, claimant: AppEntry): void {
    const c = conflicts.get(host) ?? { host, owner: owner.policy.service, claimants: [] };
    if (!c.claimants.includes(claimant.policy.service)) c.claimants.push(claimant.policy.service);
    conflicts.set(host, c);
    const key = `conflict:${host}:${owner.policy.service}:${claimant.policy.service}`;
    if (this.loggedConflicts.has(key)) return;
    if (this.loggedConflicts.size > 10_000) this.loggedConflicts.clear();
    this.loggedConflicts.add(key);
    this.options.log.error(
      { host, owner: owner.policy.service, service: claimant.policy.service, ownerDeployment: owner.deployment || undefined, deployment: claimant.deployment || undefined },
      `host ${host} is claimed by ${claimant.policy.service} too; ${owner.policy.service} had it first and keeps it`,
    );
  }

  /** A group name used in several deployments is several groups: say so once. */
  private logGroupsAcrossDeployments(groups: Map<string, AppEntry[]>): void {
    const byName = new Map<string, Set<string>>();
    for (const members of groups.values()) {
      const first = members[0];
      if (!first) continue;
      const deployments = byName.get(first.policy.group) ?? new Set<string>();
      deployments.add(first.deployment ?? '');
      byName.set(first.policy.group, deployments);
    }
    for (const [group, deployments] of byName) {
      if (deployments.size < 2) continue;
      const key = `group:${group}:${[...deployments].sort().join(',')}`;
      if (this.loggedConflicts.has(key)) continue;
      this.loggedConflicts.add(key);
      this.options.log.warn({ group, deployments: [...deployments].map((d) => d || '(none)') }, `group ${group} is named in several deployments; each wakes and sleeps only its own members`);
    }
  }

  private async onEvent(event: ServiceEvent): Promise<void> {
    const name = event.serviceName ?? this.serviceNameById.get(event.serviceId);
    if (event.action === 'remove') {
      if (name && this.byServiceName.delete(name)) {
        this.rebuildIndexes();
        this.emit('changed', name, undefined, event);
      }
      this.serviceNameById.delete(event.serviceId);
      return;
    }
    const svc = await this.options.swarm.inspectService(event.serviceId);
    if (!svc) return;
    this.serviceNameById.set(svc.id, svc.name);
    const entry = this.toEntry(svc);
    const known = this.byServiceName.get(svc.name);
    if (entry && known && known.version > entry.version) return; // an older inspect finished late
    const had = known !== undefined;
    if (entry) this.byServiceName.set(svc.name, entry);
    else this.byServiceName.delete(svc.name);
    if (entry || had) {
      this.rebuildIndexes();
      this.emit('changed', svc.name, entry, event);
    }
  }

  private async watchLoop(): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    const signal = this.abort.signal;
    let reconnecting = false;
    while (!signal.aborted) {
      const connectedAt = Date.now();
      try {
        const watching = this.options.swarm.watchServices(
          signal,
          (event) => {
            this.onEvent(event).catch((err: unknown) => this.options.log.warn({ err, serviceId: event.serviceId }, 'handling service event failed'));
          },
          this.options.onTaskContainerStart,
        );
        if (reconnecting) {
          // Subscribed again: now catch up on what happened while the stream was down.
          void sleep(100, signal).then(() => (signal.aborted ? undefined : this.resync().catch(() => undefined)));
        }
        await watching;
      } catch (err) {
        if (signal.aborted) return;
        this.options.log.warn({ err, retryInMs: delay }, 'docker event stream lost; reconnecting');
      }
      if (signal.aborted) return;
      await sleep(delay, signal);
      delay = Date.now() - connectedAt > 30_000 ? RECONNECT_MIN_MS : Math.min(delay * 2, RECONNECT_MAX_MS);
      reconnecting = true;
    }
  }
}

function groupKey(deployment: string, group: string): string {
  return `${deployment}\u0000${group}`;
}

/** The deployment a service belongs to: its stack, else the app/env deploy wrote, else ''. */
export function deploymentOf(labels: Record<string, string>): string {
  const stack = labels['com.docker.stack.namespace'];
  if (stack) return `stack:${stack}`;
  const app = labels[LABELS.deployApp];
  const env = labels[LABELS.deployEnv];
  return app && env ? `deploy:${app}/${env}` : '';
}

export function normaliseHost(hostHeader: string): string {
  let host = hostHeader.trim().toLowerCase();
  if (host.startsWith('[')) return host; // IPv6 literal: never an app host
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
