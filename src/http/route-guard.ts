/**
 * Fail closed (issue 11, must-hold 2): a request for an app whose routers carry a middleware that
 * may refuse it (auth, allow-lists, rate limits, unknown types), or whose rule matches more than
 * the Host, is proxied only when it came through the activator's own Traefik router for that app.
 * That router sets a marker header with a per-app secret value (src/traefik/dynamic-config.ts);
 * a request without it came some other way (the bare catch-all, a router Traefik disabled) and
 * gets 503 with Retry-After. The marker is removed before the app sees the request (forwarding.ts).
 *
 * Pure decisions here; the chain in app.ts / websocket.ts calls `guardRequest` once per request.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { TraefikRouter } from '../apps/model.js';
import { ActivatorError } from '../errors.js';
import { refusalReason, type MiddlewareCatalog } from '../traefik/middleware-kinds.js';

/** Set by our Traefik routers (src/traefik/dynamic-config.ts); lower case, as Node names headers. */
export const ROUTE_MARKER_HEADER = 'x-activator-route';

/** Why an app must be reached through its own router, or undefined when any path will do. */
export interface RouteRequirement {
  router: string;
  reason: string;
}

const HOST_MATCHER = /(?<![A-Za-z])Host\((?:\s|,|`[^`]*`|"[^"]*")*\)/g;

/** A rule that matches only on Host (`Host(a) || Host(b)`): the activator's own Host lookup is as strict. */
export function hostOnlyRule(rule: string): boolean {
  return /^[\s()|&]*$/.test(rule.replace(HOST_MATCHER, '')) && /(?<![A-Za-z])Host\(/.test(rule);
}

/** The first of an app's routers that needs its own path, with why; undefined when none does. */
export function routeRequirement(routers: readonly TraefikRouter[], catalog: MiddlewareCatalog): RouteRequirement | undefined {
  for (const router of [...routers].sort((a, b) => a.name.localeCompare(b.name))) {
    if (router.rule.trim() && !hostOnlyRule(router.rule)) {
      return { router: router.name, reason: `its rule matches more than the Host (${router.rule}), which only Traefik evaluates` };
    }
    for (const mw of router.middlewares) {
      const why = refusalReason(mw, catalog);
      if (why) return { router: router.name, reason: why };
    }
  }
  return undefined;
}

export type GuardDecision =
  | { allow: true }
  | { allow: false; status: 400 | 503; router?: string | undefined; reason: string };

/** `host`, `host:port` or `[v6]:port`; anything else (`app:1:2`) is malformed. */
export function malformedHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  if (host.startsWith('[')) return !/^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(host);
  return !/^[^:\s]+(?::\d{1,5})?$/.test(host);
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The decision for one request. `marker` is the request's marker header (Node gives a string, or
 * an array if it came several times); `expectedMarker` is undefined without the provider, so a
 * protected app is then never proxied.
 */
export function guardRequest(host: string | undefined, requirement: RouteRequirement | undefined, marker: string | string[] | undefined, expectedMarker: string | undefined): GuardDecision {
  if (malformedHost(host)) return { allow: false, status: 400, reason: 'the Host header has a malformed port' };
  if (!requirement) return { allow: true };
  if (expectedMarker !== undefined && typeof marker === 'string' && sameSecret(marker, expectedMarker)) return { allow: true };
  return {
    allow: false,
    status: 503,
    router: requirement.router,
    reason: `${requirement.reason}; the request did not come through the activator's router for it (${marker === undefined ? 'no route marker' : 'wrong route marker'}${expectedMarker === undefined ? ', and the Traefik provider is off' : ''})`,
  };
}

/** The refusal as the domain error the error page answers: 400, or 503 with Retry-After; router and reason go to the log only. */
export function guardError(decision: GuardDecision, service: string): ActivatorError | undefined {
  if (decision.allow) return undefined;
  if (decision.status === 400) return new ActivatorError('SA_BAD_REQUEST', 'the Host header has a malformed port', service);
  return new ActivatorError('SA_ROUTE_REQUIRED', `app ${service} is reached only through its own router; try again shortly`, service, {
    detail: `router ${decision.router ?? '?'}: ${decision.reason}`,
  });
}

/** The whole check for one request: what the chain's hook calls. */
export function guardHeaders(headers: IncomingHttpHeaders, requirement: RouteRequirement | undefined, expectedMarker: string | undefined, service: string): ActivatorError | undefined {
  return guardError(guardRequest(headers.host, requirement, headers[ROUTE_MARKER_HEADER], expectedMarker), service);
}
