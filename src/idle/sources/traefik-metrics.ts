/**
 * Traefik's Prometheus metrics as activity: once Traefik routes to a woken app directly, the
 * activator no longer sees its requests, but Traefik counts them in
 *   traefik_service_requests_total{code, method, protocol, service="<name>@swarm"}.
 *
 * Each poll sums that counter over its label sets per service. Activity = the sum went up since
 * the previous poll. The counter only moves when a request ENDS (a long request or an open
 * WebSocket is invisible here), and Traefik has no per-service open-connection gauge.
 * A series disappears when its service has no task and restarts at 0 when it comes back, so:
 *   - a series missing now: a reset, not activity;
 *   - a lower value than last time: a reset, not activity;
 *   - a series that was missing last poll and is back with a value > 0: it restarted at 0 and
 *     went up, so requests ended since the last poll: activity;
 *   - the first successful poll only takes a baseline.
 */
import type { Logger } from 'pino';
import type { AppRegistry } from '../../discovery/app-registry.js';
import { normaliseName } from '../../traefik-rule.js';
import type { ActivityListener, ActivitySource } from '../activity-source.js';
import { parsePrometheusText } from '../prometheus-text.js';

export const TRAEFIK_REQUESTS_METRIC = 'traefik_service_requests_total';
const METRIC_NAMES = new Set([TRAEFIK_REQUESTS_METRIC]);

export interface TraefikMetricsSourceOptions {
  url: string;
  intervalMs: number;
  registry: Pick<AppRegistry, 'all'>;
  log: Logger;
  /** Per-scrape timeout; defaults to the interval, at most 10 s. */
  timeoutMs?: number;
  now?: () => number;
}

/** The `service` label values Traefik uses for one of an app's Traefik service names. */
export function traefikSeriesKeys(traefikService: string): string[] {
  if (traefikService.includes('@')) return [traefikService]; // already provider-qualified
  return [...new Set([`${traefikService}@swarm`, `${normaliseName(traefikService)}@swarm`])];
}

export class TraefikMetricsSource implements ActivitySource {
  readonly name = 'traefik-metrics';
  private previous: Map<string, number> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private failing = false;
  private onActivity: ActivityListener | undefined;
  private readonly now: () => number;

  constructor(private readonly options: TraefikMetricsSourceOptions) {
    this.now = options.now ?? Date.now;
  }

  start(onActivity: ActivityListener): void {
    this.onActivity = onActivity;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.poll()
        .catch(() => undefined)
        .finally(() => {
          if (this.running) this.timer = setTimeout(loop, this.options.intervalMs).unref();
        });
    };
    loop();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** One scrape; returns the apps it reported as active (tests call it directly). */
  async poll(): Promise<string[]> {
    const { log } = this.options;
    let text: string;
    try {
      const res = await fetch(this.options.url, {
        headers: { accept: 'text/plain;version=0.0.4' },
        signal: AbortSignal.timeout(this.options.timeoutMs ?? Math.min(this.options.intervalMs, 10_000)),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      text = await res.text();
    } catch (err) {
      // Keep the previous sums: an unreachable Traefik is neither activity nor a reset.
      if (!this.failing) log.warn({ err, url: this.options.url }, 'traefik metrics scrape failed');
      this.failing = true;
      return [];
    }
    if (this.failing) log.info({ url: this.options.url }, 'traefik metrics scrape recovered');
    this.failing = false;

    const sums = new Map<string, number>();
    for (const sample of parsePrometheusText(text, METRIC_NAMES)) {
      const service = sample.labels.service;
      if (service === undefined || !Number.isFinite(sample.value)) continue;
      sums.set(service, (sums.get(service) ?? 0) + sample.value);
    }
    const previous = this.previous;
    this.previous = sums;
    if (!previous) return []; // first poll: baseline only

    const at = this.now();
    const active: string[] = [];
    for (const entry of this.options.registry.all()) {
      const keys = entry.policy.traefikServices.flatMap(traefikSeriesKeys);
      if (keys.some((key) => wentUp(previous.get(key), sums.get(key)))) {
        active.push(entry.policy.service);
        this.onActivity?.(entry.policy.service, at);
      }
    }
    return active;
  }
}

function wentUp(before: number | undefined, now: number | undefined): boolean {
  if (now === undefined) return false; // missing: reset
  if (before === undefined) return now > 0; // back after a reset: counted up from 0
  return now > before; // lower: reset; equal: nothing ended
}
