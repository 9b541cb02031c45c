/**
 * The two-phase handoff before a scale-down (issue 11, must-hold 4), as Knative's activator does:
 *   1. the activator's routers for the app get a priority above the app's own (dynamic-config.ts);
 *   2. it waits, bounded, until every Traefik instance has fetched that configuration (each poll
 *      is a request to the provider endpoint, from any replica: the times are in the store), and
 *      for Traefik to apply it (its providers throttle: 2 s);
 *   3. the reaper checks activity again (its scale-down's onlyIf): a request meanwhile came
 *      through the activator and calls the sleep off (the priority drops back);
 *   4. only then the scale-down. After the next wake the priority drops back.
 * The handoffs live in the store, so every replica publishes the same body.
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
      const next = await this.options.store.timestamps('traefik-handoff');
      const changed = next.size !== this.current.size || [...next.keys()].some((k) => !this.current.has(k));
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
    for (const app of apps) {
      await this.options.store.setTimestamp('traefik-handoff', app, raisedAt);
      this.current.set(app, raisedAt);
    }
    // Only a fetch that began after the writes landed has read them: one that began during the
    // writes (on another replica) may have read the store just before, and must not count.
    const at = this.now();
    this.options.onChange();
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

  /** After a wake, or a failed handoff: the app's own routers win again. */
  async end(apps: readonly string[]): Promise<void> {
    let changed = false;
    for (const app of apps) {
      if (this.current.delete(app)) changed = true;
      await this.options.store.setTimestamp('traefik-handoff', app, undefined).catch((err: unknown) => this.options.log.warn({ err, app }, 'clearing a handoff in the store failed'));
    }
    if (changed) this.options.onChange();
  }
}
