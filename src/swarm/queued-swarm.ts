/**
 * Bounds concurrent Docker API calls: a hundred apps waking at once queue here instead of
 * flooding the engine. The event stream is long-lived and bypasses the queue.
 */
import PQueue from 'p-queue';
import type { Metrics } from '../metrics.js';
import type { SwarmClient } from './swarm.js';

export function createQueuedSwarm(inner: SwarmClient, concurrency: number, metrics?: Metrics): SwarmClient {
  const queue = new PQueue({ concurrency });
  const run = <T>(op: string, fn: () => Promise<T>, priority = 0): Promise<T> => {
    metrics?.dockerCalls.inc({ op });
    return queue.add<T>(fn, { priority });
  };
  return {
    ping: () => run('ping', () => inner.ping()),
    listServices: (filters) => run('listServices', () => inner.listServices(filters)),
    inspectService: (name) => run('inspectService', () => inner.inspectService(name)),
    // Scaling is what a held request waits on: let it jump ahead of polls and resyncs.
    scaleService: (name, replicas, options) => run('scaleService', () => inner.scaleService(name, replicas, options), 10),
    updateServiceLabels: (name, add, remove) => run('updateServiceLabels', () => inner.updateServiceLabels(name, add, remove)),
    listTasks: (id) => run('listTasks', () => inner.listTasks(id), 5),
    watchServices: (signal, onEvent) => inner.watchServices(signal, onEvent),
    containerNetworkBytes: (id) => run('containerNetworkBytes', () => inner.containerNetworkBytes(id)),
  };
}
