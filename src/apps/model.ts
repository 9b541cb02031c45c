/**
 * One typed model of an app, parsed once from its service's labels (issue 10 §1). Discovery, the
 * reaper, the CLI, deploy and the Traefik provider (issue 11) read this, never raw labels.
 * Traefik's label syntax is parsed the way Traefik does: router/middleware names and option keys
 * match case-insensitively, lists are comma-separated.
 */
import type { AppPolicy } from '../labels.js';

/** A Traefik router declared on the app's labels (`traefik.http.routers.<name>.*`). */
export interface TraefikRouter {
  /** Name as written in the first label that declared it (Traefik matches it case-insensitively). */
  name: string;
  /** '' when no rule label is set (Traefik then applies its provider's default rule). */
  rule: string;
  /** Explicit priority label, if any; Traefik's default is the rule's length. */
  priority?: number | undefined;
  entryPoints: string[];
  /** Present when any `tls` / `tls.*` label is set. */
  tls?: TraefikRouterTls | undefined;
  /** Middleware references exactly as written: `name` (same provider) or `name@provider`. */
  middlewares: string[];
  service?: string | undefined;
}

export interface TraefikRouterTls {
  certResolver?: string | undefined;
  options?: string | undefined;
  domains: { main: string; sans: string[] }[];
}

/** A middleware defined on some service's labels (`traefik.http.middlewares.<name>.<type>.*`). */
export interface TraefikMiddleware {
  name: string;
  /** Canonical Traefik type name (e.g. `basicAuth`, `ipAllowList`); unknown types keep their label spelling. */
  type: string;
  /** The options below the type, nested by their dotted keys, values as the label strings. */
  options: LabelTree;
  /** Service whose labels define it. */
  definedOn: string;
}

/** Label values nested by their dotted keys: `a.b=1` → `{ a: { b: '1' } }`. */
export interface LabelTree {
  [key: string]: string | LabelTree;
}

/**
 * What the last scale of the app was, written as `swarm-activator.state.kind` (src/apps/state.ts):
 * `woken` by the activator, `slept` by the reaper or after a failed wake, `deployed` by
 * `swarm-activator deploy`, `manual` by the CLI's wake/sleep.
 */
export type StateKind = 'woken' | 'slept' | 'deployed' | 'manual';

export interface AppState {
  since: number;
  kind: StateKind;
  /** Free text for people (CLI, dashboard); never parsed back. */
  detail: string;
}

/** Everything the activator knows about one service, parsed once. */
export interface AppModel {
  policy: AppPolicy;
  routers: TraefikRouter[];
  /** Middlewares defined in this service's own labels. */
  middlewares: TraefikMiddleware[];
  state?: AppState | undefined;
}
