/**
 * The dynamic configuration the activator publishes to Traefik's HTTP provider (issue 11): a pure
 * function of the managed apps' Traefik labels. For every router of every app, a router of ours
 * with the same rule, entry points, TLS and middlewares, pointing at the activator's Traefik
 * service, one priority below the app's router (so the app's own router wins while it has tasks).
 * Middlewares defined on the app's labels are re-published under our names (they vanish from
 * Traefik with the app's last task); references to middlewares defined elsewhere are kept, made
 * explicit (`x` → `x@swarm`), since a bare name resolves in the router's own provider.
 *
 * The output is deterministic (sorted), so every activator replica serves the same bytes and
 * Traefik's hash of the body sees no change.
 */
import { createHmac } from 'node:crypto';
import type { AppModel, LabelTree, TraefikMiddleware, TraefikRouter } from '../apps/model.js';
import { normaliseName } from '../traefik-rule.js';
import { chainMembers, qualify, type MiddlewareCatalog } from './middleware-kinds.js';

/** One managed app, as the builder needs it: its model's routers and own middlewares. */
export interface PublishedApp extends Pick<AppModel, 'routers' | 'middlewares'> {
  service: string;
}

export interface DynamicConfigOptions {
  /** The activator's Traefik service, e.g. `swarm-activator@swarm`. */
  activatorService: string;
  /** The header our routers set, so the activator knows a request came through them. */
  markerHeader: string;
  /** The header's value for an app (a secret: see markerValue). */
  markerFor: (service: string) => string;
  /** Every service's middlewares: a reference to a missing one is reported (Traefik would disable the router). */
  catalog?: MiddlewareCatalog;
  /** Apps in a handoff before a scale-down (handoff.ts): our routers outrank theirs. */
  raised?: ReadonlySet<string>;
  /** Apps whose WebSocket and event-stream requests always go through the activator (default: all). */
  longLived?: (service: string) => boolean;
}

/** What could not be carried over, per app: the app fails closed instead (route-guard.ts). */
export interface PublishProblem {
  service: string;
  router?: string;
  middleware?: string;
  message: string;
}

/** Empty maps are left out: Traefik's decoder refuses `"middlewares": {}` (and so the whole body). */
export interface DynamicConfig {
  http?: {
    routers?: Record<string, RouterConfig>;
    middlewares?: Record<string, MiddlewareConfig>;
  };
}

interface RouterConfig {
  rule: string;
  priority: number;
  service: string;
  entryPoints?: string[];
  middlewares: string[];
  tls?: { certResolver?: string; options?: string; domains?: { main: string; sans?: string[] }[] };
}

type ConfigValue = string | ConfigValue[] | { [key: string]: ConfigValue };
type MiddlewareConfig = Record<string, ConfigValue>;

/** Traefik sets it as written; Node reads it in lower case (route-guard.ts). */
export const MARKER_HEADER = 'X-Activator-Route';

/** The marker value for an app: an HMAC of its service name, so replicas agree and clients cannot guess it. */
export function markerValue(secret: string, service: string): string {
  return createHmac('sha256', secret).update(`route-marker\u0000${service}`).digest('base64url');
}

/** Our name for something of an app's (router or middleware): unique per app, valid in Traefik. */
function ownName(service: string, name: string): string {
  return `sa-${normaliseName(service)}-${normaliseName(name)}`.toLowerCase();
}

/** Traefik's default priority is the rule's length; ours sits just below the app router's. */
export function appRouterPriority(router: TraefikRouter): number {
  return router.priority ?? router.rule.length;
}

export function buildDynamicConfig(apps: readonly PublishedApp[], options: DynamicConfigOptions): { config: DynamicConfig; problems: PublishProblem[] } {
  const routers: Record<string, RouterConfig> = {};
  const middlewares: Record<string, MiddlewareConfig> = {};
  const problems: PublishProblem[] = [];
  for (const app of [...apps].sort((a, b) => a.service.localeCompare(b.service))) {
    const own = new Map(app.middlewares.map((m) => [m.name.toLowerCase(), m]));
    /** A reference as our (http provider) routers and chains must spell it. */
    const rewrite = (reference: string, provider = 'swarm'): string => {
      const q = qualify(reference, provider);
      const at = q.indexOf('@');
      const mw = q.slice(at + 1) === 'swarm' ? own.get(q.slice(0, at)) : undefined;
      return mw ? ownName(app.service, mw.name) : q;
    };
    for (const mw of app.middlewares) {
      middlewares[ownName(app.service, mw.name)] = { [mw.type]: publishedOptions(mw, rewrite) };
    }
    const marker = ownName(app.service, 'route-marker');
    middlewares[marker] = { headers: { customRequestHeaders: { [options.markerHeader]: options.markerFor(app.service) } } };
    for (const router of app.routers) {
      if (!router.rule.trim()) {
        problems.push({ service: app.service, router: router.name, message: `router ${router.name} has no rule; not published` });
        continue;
      }
      if (options.catalog) {
        for (const m of router.middlewares) {
          const q = qualify(m);
          if (q.endsWith('@swarm') && !options.catalog.has(q)) problems.push({ service: app.service, router: router.name, middleware: m, message: `middleware ${q} is defined on no service's labels: Traefik disables router ${router.name}` });
        }
      }
      const published: RouterConfig = {
        rule: router.rule,
        priority: Math.max(1, appRouterPriority(router) - 1),
        service: options.activatorService,
        // The marker first: whatever the app's chain does next, only our router sets it.
        middlewares: [marker, ...router.middlewares.map((m) => rewrite(m))],
      };
      if (router.entryPoints.length > 0) published.entryPoints = [...router.entryPoints];
      if (router.tls) {
        const tls: NonNullable<RouterConfig['tls']> = {};
        if (router.tls.certResolver) tls.certResolver = router.tls.certResolver;
        if (router.tls.options) tls.options = router.tls.options;
        if (router.tls.domains.length > 0) tls.domains = router.tls.domains.map((d) => (d.sans.length > 0 ? { main: d.main, sans: [...d.sans] } : { main: d.main }));
        published.tls = tls;
      }
      if (options.raised?.has(app.service)) published.priority = appRouterPriority(router) + 1;
      routers[ownName(app.service, router.name)] = published;
      if (options.longLived?.(app.service) ?? true) {
        // WebSockets and event streams always through the activator: its tunnel keeps the app awake
        // exactly as long as they are open (Traefik's metrics do not see an open, silent connection).
        const above = appRouterPriority(router) + 1;
        routers[ownName(app.service, `${router.name}-ws`)] = { ...published, rule: `(${router.rule}) && HeaderRegexp(\`Upgrade\`, \`(?i)^websocket$\`)`, priority: above };
        routers[ownName(app.service, `${router.name}-sse`)] = { ...published, rule: `(${router.rule}) && HeaderRegexp(\`Accept\`, \`(?i)text/event-stream\`)`, priority: above };
      }
    }
  }
  const http: NonNullable<DynamicConfig['http']> = {};
  if (Object.keys(routers).length > 0) http.routers = routers;
  if (Object.keys(middlewares).length > 0) http.middlewares = middlewares;
  return { config: Object.keys(http).length > 0 ? { http } : {}, problems };
}

/** The label values as they are; only references to other middlewares (a chain's) are respelled. */
function publishedOptions(mw: TraefikMiddleware, rewrite: (reference: string) => string): ConfigValue {
  if (mw.type.toLowerCase() === 'chain') {
    const rest: LabelTree = { ...mw.options };
    delete rest.middlewares;
    return { ...treeValue(rest) as Record<string, ConfigValue>, middlewares: chainMembers(mw).map((m) => rewrite(m)) };
  }
  return treeValue(mw.options);
}

/** A LabelTree as config values: `[0]`, `[1]` keys (Traefik's label lists of structs) become a list. */
function treeValue(tree: LabelTree | string): ConfigValue {
  if (typeof tree === 'string') return tree;
  const keys = Object.keys(tree);
  if (keys.length > 0 && keys.every((k) => /^\[\d+\]$/.test(k))) {
    return keys.sort((a, b) => Number(a.slice(1, -1)) - Number(b.slice(1, -1))).map((k) => treeValue(tree[k] as LabelTree | string));
  }
  const out: Record<string, ConfigValue> = {};
  for (const k of keys) out[k] = treeValue(tree[k] as LabelTree | string);
  return out;
}

/** JSON with every object's keys sorted: the same apps give the same bytes on every replica. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
