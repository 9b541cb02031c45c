/**
 * The two-phase handoff before a scale-down (issue 11, must-hold 4), as Knative's activator does:
 *   1. the activator's routers for the app get a priority above the app's own (dynamic-config.ts);
 *   2. it waits, bounded, until every Traefik instance has fetched that configuration (each poll
 *      is a request to the provider endpoint, from any replica: the times are in the store), and
 *      for Traefik to apply it (its providers throttle: 2 s);
 *   3. the reaper checks activity again (its scale-down's onlyIf): a request meanwhile came
 *      through the activator and calls the sleep off (the priority drops back);
 *   4. only then the scale-down.
 * After a wake the priority drops back only once Traefik's swarm provider can have seen the new
 * tasks (its refresh, then its throttle): until then its router for the app still holds the old
 * task's address, and a request sent there fails (measured: 502s and 15 s timeouts, 3–5 s after
 * a scale-down, in test/e2e/traefik-boundary.test.ts). A wake also raises the priority as it
 * scales up, so Traefik does not route to a task that runs but does not serve yet.
 * The handoffs and their release times live in the store, so every replica publishes the same body.
 */
import type { Logger } from 'pino';
import { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';

export interface HandoffOptions {
  store: Pick<Store, 'setTimestamp' | 'timestamps'>;
  metrics: Metrics;
  log: Logger;
  /** How long to wait for every Traefik instance to fetch the raised priority. */
  timeoutMs: number;
  /** After the last fetch: Traefik applies a configuration within its providers throttle (2 s). */
  applyGraceMs: number;
  /** An instance that has not fetched for this long is gone, and not waited for. */
  instanceStaleMs: number;
  /** After a wake: how long the priority stays raised (Traefik's swarm refresh + throttle + margin). */
  releaseAfterMs: number;
  /**
   * Whether the app has tasks now (the registry). A handoff still raised this long after it began
   * while the app has tasks was woken outside the activator: it is released too.
   */
  awake?: (app: string) => boolean;
  /** Called when the set of handoffs changed (the body must be rebuilt). */
  onChange: () => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type HandoffResult = { ok: true; waitedMs: number } | { ok: false; reason: string };

const POLL_MS = 100;

export class Handoffs {
  private current = new Map<string, number>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly outcomes: Counter<'outcome'>;
  private readonly waits: Histogram;

  constructor(private readonly options: HandoffOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.outcomes = new Counter({ name: 'activator_traefik_handoffs_total', help: 'Handoffs before a scale-down, by outcome: ready (Traefik fetched it), no-fetch (not scaled down), cancelled (activity meanwhile, or the scale-down did not happen)', labelNames: ['outcome'], registers: [options.metrics.registry] });
    this.waits = new Histogram({ name: 'activator_traefik_handoff_wait_seconds', help: 'From raising the priority to every Traefik instance having fetched it', buckets: [0.5, 1, 2, 3, 5, 10, 20], registers: [options.metrics.registry] });
  }

  /** Apps in a handoff, read again from the store (before each body); the last known on a store error. */
  async refresh(): Promise<ReadonlySet<string>> {
    try {
      const { store } = this.options;
      const [raised, releases] = await Promise.all([store.timestamps('traefik-handoff'), store.timestamps('traefik-release')]);
      const now = this.now();
      const before = [...this.current.keys()];
      const next = new Map<string, number>();
      for (const [app, at] of raised) {
        const releaseAt = releases.get(app);
        if (releaseAt !== undefined && releaseAt <= now) {
          await this.clear(app);
          continue;
        }
        // Woken outside the activator (docker service scale): no wake of ours will release it.
        if (releaseAt === undefined && now - at > this.staleAfterMs() && this.options.awake?.(app)) {
          await store.setTimestamp('traefik-release', app, now + this.options.releaseAfterMs);
        }
        next.set(app, at);
      }
      const changed = next.size !== before.length || before.some((k) => !next.has(k));
      this.current = next;
      if (changed) this.options.onChange();
    } catch (err) {
      this.options.log.warn({ err }, 'reading the handoffs from the store failed; publishing the last known');
    }
    return this.raised();
  }

  raised(): ReadonlySet<string> {
    return new Set(this.current.keys());
  }

  /** A fetch by `instance` that began at `at` (before it read the handoffs). */
  async noteFetch(instance: string, at: number): Promise<void> {
    await this.options.store.setTimestamp('traefik-fetch', instance, at).catch((err: unknown) => this.options.log.warn({ err, instance }, 'recording a Traefik fetch in the store failed'));
  }

  /** Phases 1 and 2 for the apps about to be scaled down; on failure the priority is back down. */
  async begin(apps: readonly string[]): Promise<HandoffResult> {
    const raisedAt = this.now();
    await this.raise(apps, raisedAt);
    // Only a fetch that began after the writes landed has read them: one that began during the
    // writes (on another replica) may have read the store just before, and must not count.
    const at = this.now();
    const fail = async (reason: string): Promise<HandoffResult> => {
      this.outcomes.inc({ outcome: 'no-fetch' });
      await this.end(apps);
      return { ok: false, reason };
    };
    const instances = [...(await this.options.store.timestamps('traefik-fetch'))].filter(([, t]) => at - t < this.options.instanceStaleMs).map(([i]) => i);
    if (instances.length === 0) return fail(`no Traefik instance fetched the provider's configuration in the last ${this.options.instanceStaleMs} ms, so none would stop routing to the app's tasks`);
    for (;;) {
      const fetched = await this.options.store.timestamps('traefik-fetch');
      const waiting = instances.filter((i) => (fetched.get(i) ?? 0) <= at);
      if (waiting.length === 0) break;
      if (this.now() - at > this.options.timeoutMs) return fail(`Traefik instance(s) ${waiting.join(', ')} did not fetch the raised priority within ${this.options.timeoutMs} ms`);
      await this.sleep(POLL_MS);
    }
    this.waits.observe((this.now() - raisedAt) / 1000);
    await this.sleep(this.options.applyGraceMs);
    this.outcomes.inc({ outcome: 'ready' });
    return { ok: true, waitedMs: this.now() - raisedAt };
  }

  /** The sleep was called off after phase 2 (activity, a changed service): the priority drops back. */
  async cancel(apps: readonly string[]): Promise<void> {
    this.outcomes.inc({ outcome: 'cancelled' });
    await this.end(apps);
  }

  /** A wake scales the app up: its requests stay with the activator until its tasks serve (no fetch awaited). */
  async hold(apps: readonly string[]): Promise<void> {
    await this.raise(apps, this.now()).catch((err: unknown) => this.options.log.warn({ err, apps }, 'raising the priority for a wake failed'));
  }

  /** The wake is done: the app's own routers win again once Traefik's swarm provider has its new tasks. */
  async releaseLater(apps: readonly string[]): Promise<void> {
    const at = this.now() + this.options.releaseAfterMs;
    for (const app of apps) {
      if (!this.current.has(app)) continue;
      await this.options.store.setTimestamp('traefik-release', app, at).catch((err: unknown) => this.options.log.warn({ err, app }, 'recording when a handoff ends failed'));
    }
  }

  /** A failed or cancelled handoff: the app's own routers win again at once (its tasks never went). */
  async end(apps: readonly string[]): Promise<void> {
    let changed = false;
    for (const app of apps) {
      if (this.current.has(app)) changed = true;
      await this.clear(app);
    }
    if (changed) this.options.onChange();
  }

  private async raise(apps: readonly string[], at: number): Promise<void> {
    for (const app of apps) {
      // A release pending from the last wake would drop this new handoff early.
      await this.options.store.setTimestamp('traefik-release', app, undefined);
      await this.options.store.setTimestamp('traefik-handoff', app, at);
      this.current.set(app, at);
    }
    this.options.onChange();
  }

  private async clear(app: string): Promise<void> {
    this.current.delete(app);
    const { store, log } = this.options;
    await Promise.all([store.setTimestamp('traefik-handoff', app, undefined), store.setTimestamp('traefik-release', app, undefined)]).catch((err: unknown) => log.warn({ err, app }, 'clearing a handoff in the store failed'));
  }

  /** A scale-down's handoff is over well within this (its wait, the grace, the scale-down call). */
  private staleAfterMs(): number {
    return this.options.timeoutMs + this.options.applyGraceMs + 30_000;
  }
}
