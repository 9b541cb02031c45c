/**
 * Orders a wake after a scale-down that is being applied to the same service.
 *
 * Without it, a request arriving while the reaper's update is in flight starts a wake whose
 * scale-up finds the service still at its old replicas and writes nothing; the scale-down then
 * lands and the wake would wait on a task that is going away. With the guard, the wake's
 * scale-up runs after the scale-down has been written, sees the lower replica count, and scales
 * back up: the request ends with the app up and answered.
 */
import type { SwarmClient } from '../swarm/swarm.js';

export class ScaleDownGuard {
  private readonly inProgress = new Map<string, Promise<unknown>>();

  /** Runs the scale-down `fn` for `service`; scale-ups through wrap() wait for it to settle. */
  async run<T>(service: string, fn: () => Promise<T>): Promise<T> {
    const promise = fn();
    this.inProgress.set(service, promise);
    try {
      return await promise;
    } finally {
      if (this.inProgress.get(service) === promise) this.inProgress.delete(service);
    }
  }

  /** Resolves once no scale-down of the service is in flight (its outcome does not matter here). */
  async settled(service: string): Promise<void> {
    for (let p = this.inProgress.get(service); p; p = this.inProgress.get(service)) {
      await p.then(
        () => undefined,
        () => undefined,
      );
    }
  }

  /** The SwarmClient the wake path uses: every scaleService waits for a scale-down in flight. */
  wrap<S extends Pick<SwarmClient, 'scaleService'>>(swarm: S): S {
    return Object.assign(Object.create(swarm) as S, {
      scaleService: async (...args: Parameters<SwarmClient['scaleService']>) => {
        await this.settled(args[0]);
        return swarm.scaleService(...args);
      },
    });
  }
}
