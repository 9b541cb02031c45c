/**
 * What deploy/undeploy/converge read from the Engine API: a stack's services (with their update
 * status), tasks, networks, configs and secrets. DockerodeStackEngine is the one implementation;
 * tests use small fakes.
 */
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { DockerodeSwarm, dockerOptionsFromHost } from '../swarm/dockerode-swarm.js';
import type { SwarmClient, TaskInfo } from '../swarm/swarm.js';
import { DeployError } from './errors.js';

/** The label Docker puts on everything `docker stack deploy` creates. */
export const STACK_NAMESPACE_LABEL = 'com.docker.stack.namespace';

export interface StackService {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Desired replicas; null for global services. */
  replicas: number | null;
  /** Swarm's rolling-update state (updating, paused, completed, rollback_*), if an update ran. */
  updateState: string | undefined;
  updateMessage: string | undefined;
}

export interface StackObject {
  id: string;
  name: string;
}

export interface NetworkInfo {
  name: string;
  driver: string;
  scope: string;
}

export interface StackEngine {
  ping(): Promise<void>;
  inspectNetwork(name: string): Promise<NetworkInfo | null>;
  /** Services carrying every label filter ("key=value" or "key"). */
  listServices(labelFilters: string[]): Promise<StackService[]>;
  listTasks(serviceId: string): Promise<TaskInfo[]>;
  listNetworks(stack: string): Promise<StackObject[]>;
  removeNetwork(id: string): Promise<void>;
  /** Configs and secrets of the stack (docker stack rm removes them too). */
  listConfigsAndSecrets(stack: string): Promise<StackObject[]>;
  /** Containers of the stack on the engine we talk to (other nodes' agents remove theirs). */
  listLocalContainers(stack: string): Promise<StackObject[]>;
}

interface RawService {
  ID: string;
  Spec: { Name: string; Labels?: Record<string, string>; Mode?: { Replicated?: { Replicas?: number }; Global?: object } };
  UpdateStatus?: { State?: string; Message?: string };
}

export class DockerodeStackEngine implements StackEngine {
  private readonly docker: Docker;
  readonly swarm: SwarmClient;

  constructor(options: { dockerHost: string; log: Logger; requestTimeoutMs?: number; dockerOptions?: Partial<Docker.DockerOptions> }) {
    this.docker = new Docker({ ...dockerOptionsFromHost(options.dockerHost), ...options.dockerOptions, timeout: options.requestTimeoutMs ?? 15_000 });
    this.swarm = new DockerodeSwarm({
      dockerHost: options.dockerHost,
      log: options.log,
      requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
      ...(options.dockerOptions ? { dockerOptions: options.dockerOptions } : {}),
    });
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new DeployError(`Docker API: ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async ping(): Promise<void> {
    await this.swarm.ping();
  }

  async inspectNetwork(name: string): Promise<NetworkInfo | null> {
    const nets = (await this.call('list networks', () => this.docker.listNetworks({ filters: { name: [name] } }))) as Array<{ Name: string; Driver: string; Scope: string }>;
    // The name filter matches substrings: keep the exact one.
    const net = nets.find((n) => n.Name === name);
    return net ? { name: net.Name, driver: net.Driver, scope: net.Scope } : null;
  }

  async listServices(labelFilters: string[]): Promise<StackService[]> {
    const raw = (await this.call('list services', () => this.docker.listServices({ filters: { label: labelFilters } }))) as unknown as RawService[];
    return raw.map((s) => ({
      id: s.ID,
      name: s.Spec.Name,
      labels: s.Spec.Labels ?? {},
      replicas: s.Spec.Mode?.Global ? null : (s.Spec.Mode?.Replicated?.Replicas ?? 1),
      updateState: s.UpdateStatus?.State || undefined,
      updateMessage: s.UpdateStatus?.Message || undefined,
    }));
  }

  listTasks(serviceId: string): Promise<TaskInfo[]> {
    return this.swarm.listTasks(serviceId);
  }

  async listNetworks(stack: string): Promise<StackObject[]> {
    const nets = (await this.call('list networks', () => this.docker.listNetworks({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } }))) as Array<{ Id: string; Name: string }>;
    return nets.map((n) => ({ id: n.Id, name: n.Name }));
  }

  async removeNetwork(id: string): Promise<void> {
    try {
      await this.docker.getNetwork(id).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return;
      throw new DeployError(`Docker API: remove network ${id} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async listConfigsAndSecrets(stack: string): Promise<StackObject[]> {
    const filters = { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] };
    const [configs, secrets] = await Promise.all([
      this.call('list configs', () => this.docker.listConfigs({ filters })) as Promise<Array<{ ID: string; Spec?: { Name?: string } }>>,
      this.call('list secrets', () => this.docker.listSecrets({ filters })) as Promise<Array<{ ID: string; Spec?: { Name?: string } }>>,
    ]);
    return [...configs, ...secrets].map((o) => ({ id: o.ID, name: o.Spec?.Name ?? o.ID }));
  }

  async listLocalContainers(stack: string): Promise<StackObject[]> {
    const list = await this.call('list containers', () => this.docker.listContainers({ all: true, filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } }));
    return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, '') }));
  }
}
