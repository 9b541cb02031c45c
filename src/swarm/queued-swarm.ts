/**
 * Bounds concurrent Docker API calls: a hundred apps waking at once queue here instead of
 * flooding the engine. The event stream is long-lived and bypasses the queue.
 */
import PQueue from 'p-queue';
import type { SwarmClient } from './swarm.js';

export function createQueuedSwarm(inner: SwarmClient, concurrency: number): SwarmClient & { queue: PQueue } {
  const queue = new PQueue({ concurrency });
  const run = <T>(fn: () => Promise<T>, priority = 0): Promise<T> => queue.add(fn, { priority }) as Promise<T>;
  return {
    queue,
    ping: () => run(() => inner.ping()),
    listServices: (filters) => run(() => inner.listServices(filters)),
    inspectService: (name) => run(() => inner.inspectService(name)),
    // Scaling is what a held request waits on: let it jump ahead of polls and resyncs.
    scaleService: (name, replicas, options) => run(() => inner.scaleService(name, replicas, options), 10),
    updateServiceLabels: (name, add, remove) => run(() => inner.updateServiceLabels(name, add, remove)),
    listTasks: (id) => run(() => inner.listTasks(id), 5),
    watchServices: (signal, onEvent) => inner.watchServices(signal, onEvent),
    containerNetworkBytes: (id) => run(() => inner.containerNetworkBytes(id)),
  };
}
