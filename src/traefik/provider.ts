/**
 * The Traefik provider (issue 11): what the activator knows of every service's Traefik labels,
 * the dynamic configuration it serves to Traefik's HTTP provider from that, and which Traefik
 * instances fetched it when.
 *
 * - The middleware catalog: middleware definitions from the labels of every service (not only
 *   managed apps: the shared redirect lives on Traefik's own service), read as Traefik does.
 *   It tells which apps must be reached through their own router (src/http/route-guard.ts).
 * - The body: buildDynamicConfig over the managed apps, rebuilt only when an app or the catalog
 *   changed, the same bytes on every replica.
 * - Fetches: every poll is a request to the endpoint; counted per instance (its address).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { TraefikMiddleware, TraefikRouter } from '../apps/model.js';
import { parseTraefikLabels } from '../apps/traefik-labels.js';
import type { AdminToken } from '../config.js';
import type { AppEntry, AppRegistry } from '../discovery/app-registry.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { ActivatorError } from '../errors.js';
import { guardHeaders, routeRequirement, type RouteRequirement } from '../http/route-guard.js';
import { LABELS } from '../labels.js';
import type { TraefikAppView } from '../http/app-view.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { SwarmClient } from '../swarm/swarm.js';
import { Handoffs } from './handoff.js';
import { buildDynamicConfig, MARKER_HEADER, markerValue, stableJson, type PublishProblem, type PublishedApp } from './dynamic-config.js';
import type { MiddlewareCatalog } from './middleware-kinds.js';

/** The admin-port path Traefik polls (stack/traefik.yml: --providers.http.endpoint). */
export const PROVIDER_PATH = '/traefik/dynamic-config';
/** The header Traefik sends the token in (--providers.http.headers.<name>). */
export const PROVIDER_TOKEN_HEADER = 'x-activator-provider-token';

export interface TraefikProviderOptions {
  registry: AppRegistry;
  swarm: Pick<SwarmClient, 'listServices'>;
  metrics: Metrics;
  log: Logger;
  /** Unset: the provider is off (no endpoint, no marker); the catalog still guards apps. */
  token: AdminToken | undefined;
  activatorService: string;
  /** How often every service's labels are read again for the catalog. */
  catalogRefreshMs: number;
  /** Handoffs and Traefik's fetches, shared by the replicas. */
  store: Pick<Store, 'setTimestamp' | 'timestamps'>;
  /** The bounded wait for every Traefik instance to fetch a raised priority (ACTIVATOR_TRAEFIK_HANDOFF_TIMEOUT). */
  handoffTimeoutMs: number;
  /** After the fetch, until Traefik applies it (its providers throttle is 2 s). */
  handoffApplyMs?: number;
  /** Traefik's swarm provider refresh (ACTIVATOR_TRAEFIK_SWARM_REFRESH): after a wake, the priority drops back after it. */
  swarmRefreshMs: number;
  now?: () => number;
}

interface AppTraefik {
  version: number;
  routers: TraefikRouter[];
  middlewares: TraefikMiddleware[];
  problems: string[];
  /** LONG_LIVED_LABEL: WebSocket and event-stream routers through the activator (default true). */
  longLived: boolean;
  longLivedProblem?: string | undefined;
  /** routeRequirement, for the catalog version it was computed with. */
  requirement?: { catalogVersion: number; value: RouteRequirement | undefined };
}

export interface FetchRecord {
  instance: string;
  fetches: number;
  lastAt: number;
  /** The body version it got last (rises with every change of the body). */
  lastVersion: number;
}

export class TraefikProvider {
  private catalog = new Map<string, TraefikMiddleware>();
  private catalogVersion = 0;
  private readonly apps = new Map<string, AppTraefik>();
  private body: { text: string; version: number; problems: PublishProblem[] } | undefined;
  private bodyVersion = 0;
  private readonly fetchesByInstance = new Map<string, FetchRecord>();
  private timer: NodeJS.Timeout | undefined;
  private readonly loggedProblems = new Map<string, string>();
  private readonly now: () => number;
  private readonly fetchCounter: Counter<'instance'>;
  readonly handoffs: Handoffs;

  constructor(private readonly options: TraefikProviderOptions) {
    this.now = options.now ?? Date.now;
    this.fetchCounter = new Counter({ name: 'activator_traefik_provider_fetches_total', help: 'Fetches of the dynamic configuration, per Traefik instance (its address)', labelNames: ['instance'], registers: [options.metrics.registry] });
    const sinceFetch: Gauge<'instance'> = new Gauge({
      name: 'activator_traefik_provider_seconds_since_fetch',
      help: 'Seconds since each Traefik instance last fetched the dynamic configuration',
      labelNames: ['instance'],
      registers: [options.metrics.registry],
      collect: () => {
        sinceFetch.reset();
        for (const f of this.fetches()) sinceFetch.set({ instance: f.instance }, (this.now() - f.lastAt) / 1000);
      },
    });
    this.handoffs = new Handoffs({
      store: options.store,
      metrics: options.metrics,
      log: options.log,
      timeoutMs: options.handoffTimeoutMs,
      applyGraceMs: options.handoffApplyMs ?? 2500,
      instanceStaleMs: 30_000,
      // Traefik's swarm refresh, then its providers throttle (2 s), and a second of margin.
      releaseAfterMs: options.swarmRefreshMs + 3000,
      awake: (app) => (options.registry.byService(app)?.replicas ?? 0) > 0,
      now: this.now,
      onChange: () => (this.body = undefined),
    });
    options.registry.on('changed', (service, entry) => {
      if (!entry) this.apps.delete(service);
      this.body = undefined;
    });
  }

  get enabled(): boolean {
    return this.options.token !== undefined;
  }

  async start(): Promise<void> {
    await this.refreshCatalog().catch((err: unknown) => this.options.log.warn({ err }, 'reading the middlewares of every service failed; will retry'));
    this.timer = setInterval(() => {
      this.refreshCatalog().catch((err: unknown) => this.options.log.warn({ err }, 'reading the middlewares of every service failed'));
    }, this.options.catalogRefreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Every service's middlewares, by `name@swarm`, lower case (what a reference resolves to). */
  async refreshCatalog(): Promise<void> {
    const services = await this.options.swarm.listServices([]);
    const next = new Map<string, TraefikMiddleware>();
    for (const svc of [...services].sort((a, b) => a.name.localeCompare(b.name))) {
      if (!Object.keys(svc.labels).some((k) => /^traefik\.http\.middlewares\./i.test(k))) continue;
      for (const mw of parseTraefikLabels(svc.labels, svc.name).middlewares) {
        const key = `${mw.name.toLowerCase()}@swarm`;
        if (!next.has(key)) next.set(key, mw);
      }
    }
    if (stableJson([...next]) !== stableJson([...this.catalog])) {
      this.catalog = next;
      this.catalogVersion += 1;
      this.body = undefined;
    }
  }

  private traefikOf(entry: AppEntry): AppTraefik {
    const known = this.apps.get(entry.policy.service);
    if (known && known.version === entry.version) return known;
    const parsed = parseTraefikLabels(entry.labels, entry.policy.service);
    const raw = entry.labels[LABELS.traefikLongLived]?.trim().toLowerCase();
    const longLived = raw !== 'false';
    const longLivedProblem = raw !== undefined && raw !== 'true' && raw !== 'false' ? `${LABELS.traefikLongLived}: "${entry.labels[LABELS.traefikLongLived]}" is not true or false (taken as true)` : undefined;
    const app: AppTraefik = { version: entry.version, routers: parsed.routers, middlewares: parsed.middlewares, problems: parsed.problems.map((p) => `${p.label}: ${p.message}`), longLived, longLivedProblem };
    this.apps.set(entry.policy.service, app);
    return app;
  }

  /** The catalog, with the app's own middlewares as its labels say right now. */
  private catalogFor(app: AppTraefik): MiddlewareCatalog {
    if (app.middlewares.length === 0) return this.catalog;
    const merged = new Map(this.catalog);
    for (const mw of app.middlewares) merged.set(`${mw.name.toLowerCase()}@swarm`, mw);
    return merged;
  }

  /** Why the app must be reached through its own router (undefined: any path will do). */
  requirementFor(entry: AppEntry): RouteRequirement | undefined {
    const app = this.traefikOf(entry);
    if (app.requirement?.catalogVersion !== this.catalogVersion) app.requirement = { catalogVersion: this.catalogVersion, value: routeRequirement(app.routers, this.catalogFor(app)) };
    return app.requirement.value;
  }

  /** Fail closed: the error for a request for `entry` that must not be proxied (route-guard.ts). */
  guard(entry: AppEntry, headers: IncomingHttpHeaders): ActivatorError | undefined {
    return guardHeaders(headers, this.requirementFor(entry), this.expectedMarker(entry.policy.service), entry.policy.service);
  }

  private readonly markers = new Map<string, string>();

  /** For /api/apps. */
  viewOf(entry: AppEntry): TraefikAppView {
    return {
      provider: this.enabled ? 'on' : 'off',
      ownRouterRequired: this.requirementFor(entry) ?? null,
      problems: this.problemsOf(entry.policy.service),
      handoff: this.handoffs.raised().has(entry.policy.service),
    };
  }

  /** The marker our router for the app sets; undefined while the provider is off. Memoised: asked per request. */
  expectedMarker(service: string): string | undefined {
    const token = this.options.token;
    if (!token) return undefined;
    let marker = this.markers.get(service);
    if (marker === undefined) {
      if (this.markers.size > 10_000) this.markers.clear();
      marker = markerValue(token.reveal(), service);
      this.markers.set(service, marker);
    }
    return marker;
  }

  /** The body Traefik gets, rebuilt after a change; the same input gives the same bytes. */
  current(): { text: string; version: number; problems: PublishProblem[] } {
    if (this.body) return this.body;
    const token = this.options.token;
    const apps: PublishedApp[] = [];
    const skipped: PublishProblem[] = [];
    for (const entry of this.options.registry.all()) {
      if (!entry.policy.http) continue;
      const app = this.traefikOf(entry);
      // One bad field rejects Traefik's whole payload: an app whose labels do not decode is left out (it fails closed).
      if (app.problems.length > 0) {
        skipped.push({ service: entry.policy.service, message: `labels not published: ${app.problems.join('; ')}` });
        continue;
      }
      apps.push({ service: entry.policy.service, routers: app.routers, middlewares: app.middlewares });
      if (app.longLivedProblem) skipped.push({ service: entry.policy.service, message: app.longLivedProblem });
    }
    const longLivedOff = new Set(this.options.registry.all().filter((e) => this.traefikOf(e).longLived === false).map((e) => e.policy.service));
    const built = buildDynamicConfig(apps, {
      activatorService: this.options.activatorService,
      markerHeader: MARKER_HEADER,
      markerFor: (service) => (token ? markerValue(token.reveal(), service) : ''),
      raised: this.handoffs.raised(),
      longLived: (service) => !longLivedOff.has(service),
      catalog: new Map([...this.catalog, ...apps.flatMap((a) => a.middlewares.map((m) => [`${m.name.toLowerCase()}@swarm`, m] as const))]),
    });
    const text = stableJson(built.config);
    const problems = [...skipped, ...built.problems];
    const version = text === this.lastText ? this.bodyVersion : ++this.bodyVersion;
    this.lastText = text;
    this.body = { text, version, problems };
    this.logProblems(problems);
    return this.body;
  }

  private lastText = '';

  /** Problems of one app (for /api/apps): what could not be carried over. */
  problemsOf(service: string): string[] {
    return this.current().problems.filter((p) => p.service === service).map((p) => p.message);
  }

  private logProblems(problems: PublishProblem[]): void {
    const byService = new Map<string, PublishProblem[]>();
    for (const p of problems) byService.set(p.service, [...(byService.get(p.service) ?? []), p]);
    for (const [service, list] of byService) {
      const signature = stableJson(list);
      if (this.loggedProblems.get(service) === signature) continue;
      this.loggedProblems.set(service, signature);
      for (const p of list) this.options.log.error({ app: service, router: p.router, middleware: p.middleware, problem: p.message }, `Traefik provider: ${p.message} (app ${service} fails closed where its routers need it)`);
    }
    for (const service of this.loggedProblems.keys()) if (!byService.has(service)) this.loggedProblems.delete(service);
  }

  noteFetch(instance: string, version: number): void {
    const record = this.fetchesByInstance.get(instance) ?? { instance, fetches: 0, lastAt: 0, lastVersion: 0 };
    record.fetches += 1;
    record.lastAt = this.now();
    record.lastVersion = version;
    this.fetchesByInstance.set(instance, record);
    this.fetchCounter.inc({ instance });
  }

  fetches(): FetchRecord[] {
    return [...this.fetchesByInstance.values()];
  }

  private readonly refusedLogged = new Map<string, number>();

  /** A fetch without the right token: one line per address per minute (a misconfigured Traefik, or a probe). */
  noteRefused(instance: string, given: string | string[] | undefined): void {
    const now = this.now();
    if (now - (this.refusedLogged.get(instance) ?? 0) < 60_000) return;
    if (this.refusedLogged.size > 1000) this.refusedLogged.clear();
    this.refusedLogged.set(instance, now);
    const why = !this.enabled ? 'the provider is off' : given === undefined ? `no ${PROVIDER_TOKEN_HEADER} header` : `a wrong token (${String(given).length} characters)`;
    this.options.log.warn({ instance, reason: why }, `refused a fetch of the Traefik configuration from ${instance}: ${why}`);
  }

  tokenMatches(given: string | string[] | undefined): boolean {
    const token = this.options.token;
    if (!token || typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(token.reveal());
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/** GET /traefik/dynamic-config on the admin port: the token in its header, else 401. */
export function registerProviderRoute(admin: FastifyInstance, provider: TraefikProvider): void {
  // public: the admin tokens do not apply here; the provider's own token does (checked below).
  admin.get(PROVIDER_PATH, { config: { public: true } }, async (request, reply) => {
    if (!provider.enabled || !provider.tokenMatches(request.headers[PROVIDER_TOKEN_HEADER])) {
      provider.noteRefused(request.ip, request.headers[PROVIDER_TOKEN_HEADER]);
      return reply
        .code(401)
        .header('cache-control', 'no-store')
        .header('x-activator-error', 'SA_UNAUTHORIZED')
        .send({ error: 'SA_UNAUTHORIZED', status: 401, message: `the Traefik provider needs its token in the ${PROVIDER_TOKEN_HEADER} header` });
    }
    // Taken before the handoffs are read: a fetch that began after a handoff was written carries it.
    const began = Date.now();
    await provider.handoffs.refresh();
    const body = provider.current();
    provider.noteFetch(request.ip, body.version);
    await provider.handoffs.noteFetch(request.ip, began);
    return reply.code(200).header('cache-control', 'no-store').type('application/json').send(body.text);
  });
}
