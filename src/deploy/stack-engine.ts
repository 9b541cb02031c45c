/**
 * What deploy/undeploy/converge read from the Engine API: a stack's services (with their update
 * status), tasks, networks, configs and secrets. DockerodeStackEngine is the one implementation,
 * over the Swarm adapter (src/swarm/); tests use small fakes.
 */
import type { Logger } from 'pino';
import { DockerodeSwarm, type DockerodeSwarmOptions } from '../swarm/dockerode-swarm.js';
import { SwarmUnavailableError, type DockerObject, type NetworkInfo, type TaskInfo } from '../swarm/swarm.js';
import { DeployError } from './errors.js';

export type { NetworkInfo };
export type StackObject = DockerObject;

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

export class DockerodeStackEngine implements StackEngine {
  readonly swarm: DockerodeSwarm;

  constructor(options: { dockerHost: string; log: Logger; requestTimeoutMs?: number; dockerOptions?: DockerodeSwarmOptions['dockerOptions'] }) {
    this.swarm = new DockerodeSwarm({
      dockerHost: options.dockerHost,
      log: options.log,
      requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
      ...(options.dockerOptions ? { dockerOptions: options.dockerOptions } : {}),
    });
  }

  /** Deploy reports Docker's failures as DeployError (the CLI's exit code and message). */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const message = err instanceof SwarmUnavailableError ? err.message : `Docker API: ${(err as Error).message}`;
      throw new DeployError(message, { cause: err });
    }
  }

  async ping(): Promise<void> {
    await this.swarm.ping();
  }

  inspectNetwork(name: string): Promise<NetworkInfo | null> {
    return this.call(() => this.swarm.inspectNetwork(name));
  }

  async listServices(labelFilters: string[]): Promise<StackService[]> {
    const services = await this.call(() => this.swarm.listServices(labelFilters));
    return services.map((s) => ({ id: s.id, name: s.name, labels: s.labels, replicas: s.replicas, updateState: s.updateState, updateMessage: s.updateMessage }));
  }

  listTasks(serviceId: string): Promise<TaskInfo[]> {
    return this.swarm.listTasks(serviceId);
  }

  listNetworks(stack: string): Promise<StackObject[]> {
    return this.call(() => this.swarm.listNetworks(`${STACK_NAMESPACE_LABEL}=${stack}`));
  }

  removeNetwork(id: string): Promise<void> {
    return this.call(() => this.swarm.removeNetwork(id));
  }

  listConfigsAndSecrets(stack: string): Promise<StackObject[]> {
    return this.call(() => this.swarm.listConfigsAndSecrets(`${STACK_NAMESPACE_LABEL}=${stack}`));
  }

  listLocalContainers(stack: string): Promise<StackObject[]> {
    return this.call(() => this.swarm.listLocalContainers(`${STACK_NAMESPACE_LABEL}=${stack}`));
  }
}
