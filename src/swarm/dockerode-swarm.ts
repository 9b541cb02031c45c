/** SwarmClient over the Docker Engine API, through dockerode. */
import { createHash } from 'node:crypto';
import Docker from 'dockerode';
import type { Logger } from 'pino';
import {
  SwarmUnavailableError,
  type ContainerNetworkBytes,
  type DockerObject,
  type NetworkInfo,
  type SwarmStackClient,
  type ScaleOptions,
  type ScaleResult,
  type ServiceEvent,
  type ServiceInfo,
  type SwarmClient,
  type TaskInfo,
  type TaskState,
} from './swarm.js';

const MAX_SEQUENCE_RETRIES = 8;
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

export interface DockerodeSwarmOptions {
  dockerHost: string;
  requestTimeoutMs?: number;
  log: Logger;
  /** Extra connection options, e.g. TLS client certificates (ca, cert, key) for a tcp:// daemon. */
  dockerOptions?: Partial<Docker.DockerOptions>;
}

export function dockerOptionsFromHost(dockerHost: string): Docker.DockerOptions {
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  return {
    host: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 2376 : 2375)),
    protocol: url.protocol === 'https:' ? 'https' : 'http',
  };
}

interface RawService {
  ID: string;
  Version?: { Index?: number };
  UpdatedAt?: string;
  UpdateStatus?: { State?: string; Message?: string };
  CreatedAt?: string;
  Spec: {
    Name: string;
    Labels?: Record<string, string>;
    Mode?: { Replicated?: { Replicas?: number }; Global?: object };
    [key: string]: unknown;
  };
}

interface RawTask {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  CreatedAt?: string;
  DesiredState?: string;
  Status?: {
    State?: string;
    Message?: string;
    Err?: string;
    Timestamp?: string;
    ContainerStatus?: { ContainerID?: string; ExitCode?: number };
  };
  NetworksAttachments?: Array<{ Network?: { ID?: string; Spec?: { Name?: string } }; Addresses?: string[] }>;
}

function toServiceInfo(raw: RawService): ServiceInfo {
  const mode = raw.Spec.Mode;
  const resources = (raw.Spec.TaskTemplate as { Resources?: { Reservations?: { MemoryBytes?: number }; Limits?: { MemoryBytes?: number } } } | undefined)?.Resources;
  const reservation = resources?.Reservations?.MemoryBytes || undefined;
  const limit = resources?.Limits?.MemoryBytes || undefined;
  return {
    id: raw.ID,
    name: raw.Spec.Name,
    version: raw.Version?.Index ?? 0,
    labels: raw.Spec.Labels ?? {},
    replicas: mode?.Global ? null : (mode?.Replicated?.Replicas ?? 1),
    updatedAt: raw.UpdatedAt ?? '',
    createdAt: raw.CreatedAt ?? '',
    templateKey: createHash('sha1').update(JSON.stringify(raw.Spec.TaskTemplate ?? null)).digest('base64url'),
    ...(reservation || limit ? { memory: { reservation, limit } } : {}),
    ...(raw.UpdateStatus ? { updateState: raw.UpdateStatus.State || undefined, updateMessage: raw.UpdateStatus.Message || undefined } : {}),
  };
}

function toTaskInfo(raw: RawTask): TaskInfo {
  return {
    id: raw.ID,
    serviceId: raw.ServiceID,
    nodeId: raw.NodeID || undefined,
    state: (raw.Status?.State ?? 'new') as TaskState,
    desiredState: (raw.DesiredState ?? 'running') as TaskState,
    error: raw.Status?.Err || undefined,
    message: raw.Status?.Message ?? '',
    exitCode: raw.Status?.ContainerStatus?.ExitCode,
    containerId: raw.Status?.ContainerStatus?.ContainerID || undefined,
    stateSince: raw.Status?.Timestamp || undefined,
    createdAt: raw.CreatedAt ?? '',
    addresses: (raw.NetworksAttachments ?? []).flatMap((att) =>
      (att.Addresses ?? []).map((cidr) => ({
        networkId: att.Network?.ID ?? '',
        networkName: att.Network?.Spec?.Name ?? '',
        ip: cidr.split('/')[0] ?? '',
      })),
    ),
  };
}

function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

function isOutOfSequence(err: unknown): boolean {
  return /out of sequence/i.test(String((err as Error).message ?? err));
}

export class DockerodeSwarm implements SwarmClient, SwarmStackClient {
  private readonly docker: Docker;
  /** No request timeout: the event stream is long-lived. */
  private readonly streamDocker: Docker;
  private readonly log: Logger;

  constructor(options: DockerodeSwarmOptions) {
    const base = { ...dockerOptionsFromHost(options.dockerHost), ...options.dockerOptions };
    this.docker = new Docker({ ...base, timeout: options.requestTimeoutMs ?? 10_000 });
    this.streamDocker = new Docker(base);
    this.log = options.log;
  }

  /** Wraps transport failures as SwarmUnavailableError so callers can answer 503. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code && UNAVAILABLE_CODES.has(code)) || /timeout|socket hang up/i.test((err as Error).message ?? '')) {
        throw new SwarmUnavailableError(`Docker API unreachable during ${what}: ${(err as Error).message}`, { cause: err });
      }
      if (statusCodeOf(err) === 503) {
        throw new SwarmUnavailableError(`Docker API unavailable during ${what}: ${(err as Error).message}`, { cause: err });
      }
      throw new Error(`${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.docker.ping());
  }

  async listServices(labelFilters: string[]): Promise<ServiceInfo[]> {
    const raw = (await this.call('list services', () =>
      this.docker.listServices({ filters: { label: labelFilters } }),
    )) as unknown as RawService[];
    return raw.map(toServiceInfo);
  }

  private async inspectRaw(nameOrId: string): Promise<RawService | null> {
    try {
      const raw = (await this.call(`inspect service ${nameOrId}`, () =>
        this.docker.getService(nameOrId).inspect(),
      )) as RawService;
      // Docker resolves ID prefixes too; accept only the exact name or a full/short ID.
      if (raw.Spec.Name !== nameOrId && !raw.ID.startsWith(nameOrId)) return null;
      return raw;
    } catch (err) {
      if (statusCodeOf((err as Error).cause) === 404) return null;
      throw err;
    }
  }

  async inspectService(nameOrId: string): Promise<ServiceInfo | null> {
    const raw = await this.inspectRaw(nameOrId);
    return raw ? toServiceInfo(raw) : null;
  }

  /** Version-checked spec update; re-inspects and retries when Swarm says the version moved on. */
  private async updateSpec(
    nameOrId: string,
    mutate: (raw: RawService) => RawService['Spec'] | null,
  ): Promise<{ before: RawService; written: boolean; version: number }> {
    for (let attempt = 1; ; attempt++) {
      const raw = await this.inspectRaw(nameOrId);
      if (!raw) throw Object.assign(new Error(`service ${nameOrId} not found`), { code: 'SERVICE_NOT_FOUND' });
      const spec = mutate(raw);
      const version = raw.Version?.Index ?? 0;
      if (!spec) return { before: raw, written: false, version };
      try {
        // Spec in the body, version in the query: dockerode would otherwise put the whole spec in the URL.
        await this.call(`update service ${raw.Spec.Name}`, () =>
          this.docker.getService(raw.ID).update({ _query: { version }, _body: spec }),
        );
        return { before: raw, written: true, version: version + 1 };
      } catch (err) {
        if (isOutOfSequence(err) && attempt < MAX_SEQUENCE_RETRIES) {
          this.log.debug({ service: raw.Spec.Name, attempt }, 'update out of sequence, re-inspecting');
          continue;
        }
        throw err;
      }
    }
  }

  async scaleService(nameOrId: string, replicas: number, options: ScaleOptions = {}): Promise<ScaleResult & { conflict?: boolean }> {
    let conflict = false;
    const { before, written, version } = await this.updateSpec(nameOrId, (raw) => {
      const current = toServiceInfo(raw);
      if (current.replicas === null) throw new Error(`service ${current.name} is global and cannot be scaled`);
      if (current.replicas === replicas) return null;
      if (options.expectedVersion !== undefined && current.version !== options.expectedVersion) {
        conflict = true;
        return null;
      }
      if (options.onlyIf && !options.onlyIf(current)) {
        conflict = true;
        return null;
      }
      const labels = options.labels || options.labelsFor ? { ...(raw.Spec.Labels ?? {}), ...options.labels, ...options.labelsFor?.(current) } : raw.Spec.Labels;
      return { ...raw.Spec, Labels: labels, Mode: { Replicated: { Replicas: replicas } } };
    });
    return { changed: written, version, previousReplicas: toServiceInfo(before).replicas, ...(conflict ? { conflict } : {}) };
  }

  async updateServiceLabels(nameOrId: string, add: Record<string, string>, remove: string[] = []): Promise<ServiceInfo> {
    await this.updateSpec(nameOrId, (raw) => {
      const labels = { ...(raw.Spec.Labels ?? {}), ...add };
      for (const key of remove) delete labels[key];
      return { ...raw.Spec, Labels: labels };
    });
    const after = await this.inspectService(nameOrId);
    if (!after) throw new Error(`service ${nameOrId} disappeared during a label update`);
    return after;
  }

  async listTasks(serviceId: string): Promise<TaskInfo[]> {
    const raw = (await this.call(`list tasks of ${serviceId}`, () =>
      this.docker.listTasks({ filters: { service: [serviceId] } }),
    )) as unknown as RawTask[];
    return raw.map(toTaskInfo);
  }

  /** The tasks of several services in one call (Docker ORs the values of one filter). */
  async listTasksOf(serviceIds: readonly string[]): Promise<TaskInfo[]> {
    const raw = (await this.call(`list tasks of ${serviceIds.length} services`, () =>
      this.docker.listTasks({ filters: { service: [...serviceIds] } }),
    )) as unknown as RawTask[];
    return raw.map(toTaskInfo);
  }

  async watchServices(signal: AbortSignal, onEvent: (event: ServiceEvent) => void, onTaskContainerStart?: (taskId: string) => void): Promise<void> {
    // Docker ANDs the two filters and ORs each one's values: service create/update/remove and
    // container create/start/remove (only a swarm task's start is used).
    const filters = onTaskContainerStart ? { type: ['service', 'container'], event: ['create', 'update', 'remove', 'start'] } : { type: ['service'] };
    const stream = await this.call<NodeJS.ReadableStream>('subscribe to events', () =>
      this.streamDocker.getEvents({ filters, abortSignal: signal } as Docker.GetEventsOptions),
    );
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        (stream as unknown as { destroy?: () => void }).destroy?.();
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          try {
            const ev = JSON.parse(line) as { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
            const action = ev.Action;
            if (ev.Type === 'container') {
              const taskId = ev.Actor?.Attributes?.['com.docker.swarm.task.id'];
              if (action === 'start' && taskId) onTaskContainerStart?.(taskId);
              continue;
            }
            if (action !== 'create' && action !== 'update' && action !== 'remove') continue;
            const attrs = ev.Actor?.Attributes ?? {};
            const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
            onEvent({
              action,
              serviceId: ev.Actor?.ID ?? '',
              serviceName: attrs.name,
              replicasOld: num(attrs['replicas.old']),
              replicasNew: num(attrs['replicas.new']),
            });
          } catch (err) {
            this.log.warn({ err, line }, 'unparseable docker event');
          }
        }
      });
      const fail = (err?: Error) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve();
        else reject(new SwarmUnavailableError(`Docker event stream ended${err ? `: ${err.message}` : ''}`, { cause: err }));
      };
      stream.on('error', fail);
      stream.on('end', () => fail());
      stream.on('close', () => fail());
    });
  }

  async containerNetworkBytes(containerId: string): Promise<ContainerNetworkBytes | null> {
    try {
      const stats = (await this.call(`stats of ${containerId}`, () =>
        // one-shot: no second sample for CPU deltas (stream=false alone waits ~2 s for it).
        this.docker.getContainer(containerId).stats({ stream: false, 'one-shot': true } as { stream: false }),
      )) as { networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>; memory_stats?: { stats?: Record<string, number> } };
      let rx = 0;
      let tx = 0;
      for (const net of Object.values(stats.networks ?? {})) {
        rx += net.rx_bytes ?? 0;
        tx += net.tx_bytes ?? 0;
      }
      // cgroup v1 reports rss; v2 reports anon (the same thing: memory not backed by files).
      const mem = stats.memory_stats?.stats;
      const rssBytes = mem?.rss ?? mem?.anon;
      return { rx, tx, ...(typeof rssBytes === 'number' ? { rssBytes } : {}) };
    } catch (err) {
      if (statusCodeOf((err as Error).cause) === 404) return null;
      throw err;
    }
  }

  async inspectNetwork(name: string): Promise<NetworkInfo | null> {
    const nets = (await this.call('list networks', () => this.docker.listNetworks({ filters: { name: [name] } }))) as Array<{ Name: string; Driver: string; Scope: string }>;
    // The name filter matches substrings: keep the exact one.
    const net = nets.find((n) => n.Name === name);
    return net ? { name: net.Name, driver: net.Driver, scope: net.Scope } : null;
  }

  async listNetworks(labelFilter: string): Promise<DockerObject[]> {
    const nets = (await this.call('list networks', () => this.docker.listNetworks({ filters: { label: [labelFilter] } }))) as Array<{ Id: string; Name: string }>;
    return nets.map((n) => ({ id: n.Id, name: n.Name }));
  }

  async removeNetwork(id: string): Promise<void> {
    try {
      await this.call(`remove network ${id}`, () => this.docker.getNetwork(id).remove());
    } catch (err) {
      if (statusCodeOf((err as Error).cause) === 404) return;
      throw err;
    }
  }

  async listConfigsAndSecrets(labelFilter: string): Promise<DockerObject[]> {
    const filters = { label: [labelFilter] };
    const [configs, secrets] = await Promise.all([
      this.call('list configs', () => this.docker.listConfigs({ filters })) as Promise<Array<{ ID: string; Spec?: { Name?: string } }>>,
      this.call('list secrets', () => this.docker.listSecrets({ filters })) as Promise<Array<{ ID: string; Spec?: { Name?: string } }>>,
    ]);
    return [...configs, ...secrets].map((o) => ({ id: o.ID, name: o.Spec?.Name ?? o.ID }));
  }

  async listLocalContainers(labelFilter: string): Promise<DockerObject[]> {
    const list = await this.call('list containers', () => this.docker.listContainers({ all: true, filters: { label: [labelFilter] } }));
    return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, '') }));
  }
}
