/**
 * Which middleware types can refuse a request (issue 11, must-hold 2). A request for an app whose
 * routers carry one must come through the activator's own router for that app, or be refused:
 * otherwise a sleeping app's catch-all request would skip its auth.
 */
import type { TraefikMiddleware } from '../apps/model.js';
import { commaList } from '../apps/traefik-labels.js';

/**
 * Types that never refuse a request: they rewrite, redirect or add headers. Everything else
 * (basicAuth, digestAuth, forwardAuth, ipAllowList/ipWhiteList, rateLimit, inFlightReq, plugins,
 * types we do not know) counts as one that may refuse; a chain counts as its members.
 */
const NEVER_REFUSES = new Set(
  ['addPrefix', 'buffering', 'compress', 'contentType', 'errors', 'grpcWeb', 'headers', 'passTLSClientCert', 'redirectRegex', 'redirectScheme', 'replacePath', 'replacePathRegex', 'retry', 'stripPrefix', 'stripPrefixRegex'].map((t) => t.toLowerCase()),
);

/** Middleware definitions by `name@provider` (lower case), as Traefik resolves references. */
export type MiddlewareCatalog = ReadonlyMap<string, TraefikMiddleware>;

/** `x` on a swarm router means `x@swarm`; `x@file` stays. Lower case: Traefik matches names so. */
export function qualify(reference: string, provider = 'swarm'): string {
  const ref = reference.trim().toLowerCase();
  return ref.includes('@') ? ref : `${ref}@${provider}`;
}

/** The list of a chain's members, as written. */
export function chainMembers(mw: TraefikMiddleware): string[] {
  const list = mw.options.middlewares;
  if (typeof list === 'string') return commaList(list);
  if (list && typeof list === 'object') return Object.keys(list).sort().map((k) => list[k]).filter((v): v is string => typeof v === 'string');
  return [];
}

/**
 * Why a reference may refuse a request, or undefined when it never does. A reference the
 * catalog does not have (x@file, a typo, a middleware on a service we cannot read) may refuse.
 */
export function refusalReason(reference: string, catalog: MiddlewareCatalog, seen = new Set<string>()): string | undefined {
  const key = qualify(reference);
  if (seen.has(key)) return `middleware ${key} is part of a loop of chains`;
  const mw = catalog.get(key);
  if (!mw) return `middleware ${key} is not defined on any service's labels, so its type is unknown`;
  const type = mw.type.toLowerCase();
  if (type === 'chain') {
    seen.add(key);
    const provider = key.slice(key.indexOf('@') + 1);
    for (const member of chainMembers(mw)) {
      const inner = refusalReason(qualify(member, provider), catalog, seen);
      if (inner) return `chain ${key}: ${inner}`;
    }
    return undefined;
  }
  return NEVER_REFUSES.has(type) ? undefined : `middleware ${key} (${mw.type}) may refuse a request`;
}
