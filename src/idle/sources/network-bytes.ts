/**
 * Network byte counters of each awake app's running (or starting) containers (Docker stats) as activity: the
 * one signal for long-lived connections (WebSocket, SSE, long downloads) that go through Traefik
 * straight to the app, which Traefik's request counter only sees when they end.
 *
 * Activity = rx+tx of a container grew by more than the threshold since the previous poll.
 * The threshold absorbs background noise: the HEALTHCHECK runs inside the container (exec) and
 * makes no network traffic, but overlay/ARP chatter and the activator's own readiness probes do.
 * Only containers on engines this activator reaches are counted (stats of a task on another node
 * answer null); a new container only takes a baseline; a lower counter is a reset.
 */
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { AppRegistry } from '../../discovery/app-registry.js';
import type { SwarmClient } from '../../swarm/swarm.js';
import { PollingSource } from './polling-source.js';

/** Apps polled at once. A stats call waits for dockerd's next 1 s sample, so calls in parallel share it. */
export const DEFAULT_NETWORK_POLL_CONCURRENCY = 32;

export interface NetworkBytesSourceOptions {
  swarm: Pick<SwarmClient, 'listTasks' | 'containerNetworkBytes'>;
  registry: Pick<AppRegistry, 'all'>;
  intervalMs: number;
  /** Growth of rx+tx per container per poll that counts as activity (strictly more than this). */
  thresholdBytes: number;
  log: Logger;
  concurrency?: number;
  now?: () => number;
}

export class NetworkBytesSource extends PollingSource {
  readonly name = 'network-bytes';
  /** app → containerId → rx+tx at the previous poll. */
  private previous = new Map<string, Map<string, number>>();
  private lastErrorLog = 0;
  private readonly now: () => number;
  /** app → the largest RSS of one of its containers seen while awake (this awake stretch). */
  private readonly peakRss = new Map<string, number>();

  constructor(private readonly options: NetworkBytesSourceOptions) {
    super(options.intervalMs);
    this.now = options.now ?? Date.now;
  }

  /** Peak RSS of one task of the app since it was last seen asleep; undefined when never measured. */
  rssOf(app: string): number | undefined {
    return this.peakRss.get(app);
  }

  /** One round over the awake apps; returns the apps it reported as active. */
  async poll(): Promise<string[]> {
    const { swarm, registry, thresholdBytes } = this.options;
    const next = new Map<string, Map<string, number>>();
    const active: string[] = [];
    const awake = registry.all().filter((e) => (e.replicas ?? 1) > 0);
    const awakeNames = new Set(awake.map((e) => e.policy.service));
    for (const app of this.peakRss.keys()) if (!awakeNames.has(app)) this.peakRss.delete(app);
    const queue = new PQueue({ concurrency: this.options.concurrency ?? DEFAULT_NETWORK_POLL_CONCURRENCY });
    await Promise.all(
      awake.map((entry) => queue.add(async () => {
        const service = entry.policy.service;
        const before = this.previous.get(service) ?? new Map<string, number>();
        try {
          const tasks = await swarm.listTasks(entry.policy.serviceId);
          // `starting` too: a task may serve while its HEALTHCHECK is pending (readiness.ts), and
          // its traffic must count from the start, not from Swarm's `running` a health interval later.
          const containers = tasks.filter((t) => (t.state === 'running' || (t.state === 'starting' && t.desiredState === 'running')) && t.containerId).map((t) => t.containerId as string);
          const now = new Map<string, number>();
          let grew = false;
          await Promise.all(
            containers.map(async (id) => {
              const bytes = await swarm.containerNetworkBytes(id);
              if (!bytes) return; // not on an engine we reach, or gone
              if (bytes.rssBytes !== undefined && bytes.rssBytes > (this.peakRss.get(service) ?? 0)) this.peakRss.set(service, bytes.rssBytes);
              const total = bytes.rx + bytes.tx;
              now.set(id, total);
              const last = before.get(id);
              if (last !== undefined && total - last > thresholdBytes) grew = true;
            }),
          );
          next.set(service, now);
          if (grew) {
            active.push(service);
            this.onActivity?.(service, this.now());
          }
        } catch (err) {
          // Keep this app's baselines so one failed poll is not read as a reset.
          next.set(service, before);
          if (Date.now() - this.lastErrorLog > 30_000) {
            this.lastErrorLog = Date.now();
            this.options.log.warn({ err, app: service }, 'network stats poll failed');
          }
        }
      })),
    );
    this.previous = next;
    return active;
  }
}
