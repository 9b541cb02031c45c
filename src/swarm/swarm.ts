/**
 * The narrow view of Docker Swarm the activator needs. Domain code depends on this interface only;
 * DockerodeSwarm is the one implementation that talks to the Engine API.
 */

export interface ServiceInfo {
  id: string;
  name: string;
  /** Swarm's version index: every update must name the version it read. */
  version: number;
  labels: Record<string, string>;
  /** Desired replicas; null for global services (not scalable). */
  replicas: number | null;
  updatedAt: string;
  /** When the service was created (ISO): the first of two services claiming one Host keeps it. */
  createdAt?: string;
  /**
   * A digest of the task template (image, command, env, mounts, force-update counter, …): it changes
   * when the service is redeployed or updated, never when only replicas or labels change.
   */
  templateKey: string;
  /** Memory reservation and limit of one task (TaskTemplate.Resources), when set. */
  memory?: { reservation?: number | undefined; limit?: number | undefined } | undefined;
  /** Swarm's rolling-update state (updating, paused, completed, rollback_*), if an update ran. */
  updateState?: string | undefined;
  updateMessage?: string | undefined;
}

/** Swarm task states (api/types/swarm/task.go), in lifecycle order. */
export type TaskState =
  | 'new'
  | 'allocated'
  | 'pending'
  | 'assigned'
  | 'accepted'
  | 'preparing'
  | 'ready'
  | 'starting'
  | 'running'
  | 'complete'
  | 'shutdown'
  | 'failed'
  | 'rejected'
  | 'remove'
  | 'orphaned';

export const TERMINAL_FAILURES: ReadonlySet<TaskState> = new Set(['failed', 'rejected', 'orphaned']);

export interface TaskAddress {
  networkId: string;
  networkName: string;
  ip: string;
}

export interface TaskInfo {
  id: string;
  serviceId: string;
  nodeId: string | undefined;
  state: TaskState;
  desiredState: TaskState;
  /** Swarm's own error for a failed/rejected task, e.g. "task: non-zero exit (3)". */
  error: string | undefined;
  message: string;
  exitCode: number | undefined;
  containerId: string | undefined;
  /** When the task entered its current state (Swarm's Status.Timestamp, ISO 8601). */
  stateSince?: string;
  createdAt: string;
  addresses: TaskAddress[];
}

export interface ServiceEvent {
  action: 'create' | 'update' | 'remove';
  serviceId: string;
  serviceName: string | undefined;
  replicasOld: number | undefined;
  replicasNew: number | undefined;
}

export interface ScaleResult {
  /** False when the service already had the replicas asked for (nothing was written). */
  changed: boolean;
  version: number;
  previousReplicas: number | null;
}

export interface ScaleOptions {
  /** Refuse (return changed=false, conflict=true) unless the service is still at this version. */
  expectedVersion?: number;
  /** Only scale when the current replicas pass this check (re-evaluated after each re-inspect). */
  onlyIf?: (current: ServiceInfo) => boolean;
  /** Labels written in the same spec update (one update, one version bump). */
  labels?: Record<string, string>;
  /** More labels computed from the service as it is right before the update (after re-inspects). */
  labelsFor?: (current: ServiceInfo) => Record<string, string>;
}

export interface ContainerNetworkBytes {
  rx: number;
  tx: number;
  /** Resident memory of the container (cgroup v1 rss, v2 anon), when the stats carry it. */
  rssBytes?: number | undefined;
}

export interface SwarmClient {
  ping(): Promise<void>;
  listServices(labelFilters: string[]): Promise<ServiceInfo[]>;
  /** Exact-name (or ID) lookup; null when no such service. */
  inspectService(nameOrId: string): Promise<ServiceInfo | null>;
  /** Re-inspects and updates with the version index; retries on "update out of sequence". */
  scaleService(nameOrId: string, replicas: number, options?: ScaleOptions): Promise<ScaleResult & { conflict?: boolean }>;
  /** Adds/removes service labels (a spec update; Swarm does not restart tasks for it). */
  updateServiceLabels(nameOrId: string, add: Record<string, string>, remove?: string[]): Promise<ServiceInfo>;
  listTasks(serviceId: string): Promise<TaskInfo[]>;
  /**
   * Service create/update/remove events until the signal aborts; rejects when the stream breaks.
   * On the same stream, `onTaskContainerStart` hears a task's container start (its process runs,
   * its address is up) on the engine this client talks to; tasks on other nodes are not heard.
   */
  watchServices(signal: AbortSignal, onEvent: (event: ServiceEvent) => void, onTaskContainerStart?: (taskId: string) => void): Promise<void>;
  /** Network byte counters of a container on an engine this client reaches; null if not local. */
  containerNetworkBytes(containerId: string): Promise<ContainerNetworkBytes | null>;
}

export interface NetworkInfo {
  name: string;
  driver: string;
  scope: string;
}

/** A network, config, secret or container: what deploy lists and removes. */
export interface DockerObject {
  id: string;
  name: string;
}

/** What deploy needs beyond SwarmClient: the other objects a stack owns. */
export interface SwarmStackClient {
  /** Exact-name lookup; null when no such network. */
  inspectNetwork(name: string): Promise<NetworkInfo | null>;
  /** Networks carrying a label filter ("key=value"). */
  listNetworks(labelFilter: string): Promise<DockerObject[]>;
  /** Removes a network; one already gone is not an error. */
  removeNetwork(id: string): Promise<void>;
  listConfigsAndSecrets(labelFilter: string): Promise<DockerObject[]>;
  /** Containers on the engine this client talks to (other nodes' agents remove theirs). */
  listLocalContainers(labelFilter: string): Promise<DockerObject[]>;
}

export class SwarmUnavailableError extends Error {
  override readonly name = 'SwarmUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
