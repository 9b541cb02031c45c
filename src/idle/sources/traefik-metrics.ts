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
 *
 * Several Traefik replicas each count their own requests. The URL's host name is resolved on
 * every poll and each address is scraped and compared with its own previous scrape: with
 * http://tasks.traefik:8082/metrics (Swarm's DNS name for every task of the traefik service)
 * each replica is followed on its own. Through a VIP, polls would land on replicas with
 * different counters, and the jumps between them would read as activity and resets.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { AppRegistry } from '../../discovery/app-registry.js';
import { normaliseName } from '../../traefik-rule.js';
import { PollingSource } from './polling-source.js';
import { parsePrometheusText } from '../prometheus-text.js';
import { redactUrl } from '../../redact.js';

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
  /** DNS lookup of every address of a host (tests inject one). */
  resolve?: (host: string) => Promise<string[]>;
}

interface Target {
  /** The address scraped (or the URL itself when its host is an IP literal). */
  key: string;
  url: string;
}

const resolveAll = async (host: string): Promise<string[]> => (await lookup(host, { all: true })).map((a) => a.address);

/** The `service` label values Traefik uses for one of an app's Traefik service names. */
export function traefikSeriesKeys(traefikService: string): string[] {
  if (traefikService.includes('@')) return [traefikService]; // already provider-qualified
  return [...new Set([`${traefikService}@swarm`, `${normaliseName(traefikService)}@swarm`])];
}

export class TraefikMetricsSource extends PollingSource {
  readonly name = 'traefik-metrics';
  /** target → series → summed counter at the previous successful scrape of that target. */
  private previous = new Map<string, Map<string, number>>();
  private failing = false;
  private readonly now: () => number;

  constructor(private readonly options: TraefikMetricsSourceOptions) {
    super(options.intervalMs);
    this.now = options.now ?? Date.now;
  }

  /** One scrape of every target; returns the apps it reported as active (tests call it directly). */
  async poll(): Promise<string[]> {
    const { log } = this.options;
    let targets: Target[];
    try {
      targets = await this.targets();
    } catch (err) {
      this.failed(err);
      return [];
    }
    const scrapes = await Promise.all(targets.map(async (target) => ({ target, sums: await this.scrape(target).catch((err: unknown) => err as Error) })));
    const errors = scrapes.filter((s) => s.sums instanceof Error);
    if (errors.length > 0) this.failed(errors[0]?.sums, errors.map((e) => e.target.key));
    else if (this.failing) {
      log.info({ url: redactUrl(this.options.url) }, 'traefik metrics scrape recovered');
      this.failing = false;
    }

    const at = this.now();
    const next = new Map<string, Map<string, number>>();
    const active = new Set<string>();
    const entries = this.options.registry.all();
    for (const { target, sums } of scrapes) {
      const before = this.previous.get(target.key);
      if (sums instanceof Error) {
        // An unreachable Traefik is neither activity nor a reset: keep the last good scrape.
        if (before) next.set(target.key, before);
        continue;
      }
      next.set(target.key, sums);
      if (!before) continue; // first scrape of this target: baseline only
      for (const entry of entries) {
        const keys = entry.policy.traefikServices.flatMap(traefikSeriesKeys);
        if (keys.some((key) => wentUp(before.get(key), sums.get(key)))) active.add(entry.policy.service);
      }
    }
    this.previous = next; // targets gone from DNS are forgotten
    for (const app of active) this.onActivity?.(app, at);
    return [...active];
  }

  private async targets(): Promise<Target[]> {
    const url = new URL(this.options.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) return [{ key: url.toString(), url: url.toString() }];
    const addresses = [...new Set(await (this.options.resolve ?? resolveAll)(host))].sort();
    if (addresses.length === 0) throw new Error(`${host} resolves to no address`);
    return addresses.map((address) => {
      const u = new URL(url);
      u.hostname = isIP(address) === 6 ? `[${address}]` : address;
      return { key: address, url: u.toString() };
    });
  }

  private async scrape(target: Target): Promise<Map<string, number>> {
    const res = await fetch(target.url, {
      headers: { accept: 'text/plain;version=0.0.4' },
      signal: AbortSignal.timeout(this.options.timeoutMs ?? Math.min(this.options.intervalMs, 10_000)),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${redactUrl(target.url)}`);
    const text = await res.text();
    const sums = new Map<string, number>();
    for (const sample of parsePrometheusText(text, METRIC_NAMES)) {
      const service = sample.labels.service;
      if (service === undefined || !Number.isFinite(sample.value)) continue;
      sums.set(service, (sums.get(service) ?? 0) + sample.value);
    }
    return sums;
  }

  private failed(err: unknown, targets?: string[]): void {
    if (!this.failing) this.options.log.warn({ err, url: redactUrl(this.options.url), targets: targets?.map(redactUrl) }, 'traefik metrics scrape failed');
    this.failing = true;
  }
}

function wentUp(before: number | undefined, now: number | undefined): boolean {
  if (now === undefined) return false; // missing: reset
  if (before === undefined) return now > 0; // back after a reset: counted up from 0
  return now > before; // lower: reset; equal: nothing ended
}
