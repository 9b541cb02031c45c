/**
 * Bounds concurrent Docker API calls: a hundred apps waking at once queue here instead of
 * flooding the engine. The event stream is long-lived and bypasses the queue. Task lists are
 * batched (task-list-batch.ts), so wakes do not wait behind each other's polls.
 */
import PQueue from 'p-queue';
import type { Metrics } from '../metrics.js';
import type { SwarmClient, TaskInfo } from './swarm.js';
import { TaskListBatch } from './task-list-batch.js';

/** An engine client that can list the tasks of several services in one call (DockerodeSwarm). */
export interface ListsTasksOfMany {
  listTasksOf(serviceIds: readonly string[]): Promise<TaskInfo[]>;
}

export function createQueuedSwarm(inner: SwarmClient & Partial<ListsTasksOfMany>, concurrency: number, metrics?: Metrics): SwarmClient {
  const queue = new PQueue({ concurrency });
  const run = <T>(op: string, fn: () => Promise<T>, priority = 0): Promise<T> => {
    metrics?.dockerCalls.inc({ op });
    return queue.add<T>(fn, { priority });
  };
  const listMany = inner.listTasksOf?.bind(inner);
  // Task lists (what every waking app polls) are batched: one queued at a time, for all services asked for meanwhile.
  const tasks = listMany
    ? new TaskListBatch({
        listMany: (ids) => listMany(ids),
        listOne: (id) => inner.listTasks(id),
        enqueue: (fn) => run('listTasks', fn, 5),
      })
    : undefined;
  return {
    ping: () => run('ping', () => inner.ping()),
    listServices: (filters) => run('listServices', () => inner.listServices(filters)),
    inspectService: (name) => run('inspectService', () => inner.inspectService(name)),
    // Scaling is what a held request waits on: let it jump ahead of polls and resyncs.
    scaleService: (name, replicas, options) => run('scaleService', () => inner.scaleService(name, replicas, options), 10),
    updateServiceLabels: (name, add, remove) => run('updateServiceLabels', () => inner.updateServiceLabels(name, add, remove)),
    listTasks: (id) => (tasks ? tasks.list(id) : run('listTasks', () => inner.listTasks(id), 5)),
    watchServices: (signal, onEvent, onTaskContainerStart) => inner.watchServices(signal, onEvent, onTaskContainerStart),
    containerNetworkBytes: (id) => run('containerNetworkBytes', () => inner.containerNetworkBytes(id)),
  };
}
