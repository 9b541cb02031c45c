/**
 * A service's labels → its AppModel, parsed once: the activator's policy, its Traefik routers,
 * the middlewares its own labels define, and the state the activator wrote.
 */
import { parsePolicy, type LabelError, type PolicyDefaults } from '../labels.js';
import type { AppModel } from './model.js';
import { readState } from './state.js';
import { parseTraefikLabels } from './traefik-labels.js';

export interface ServiceLabels {
  id: string;
  name: string;
  labels: Record<string, string>;
}

/** What the labels say besides the policy; known even when the policy is broken. */
export type AppTraits = Omit<AppModel, 'policy'>;

export type AppParseResult = { ok: true; app: AppModel } | { ok: false; errors: LabelError[]; app: AppTraits };

export function parseApp(service: ServiceLabels, defaults: PolicyDefaults): AppParseResult {
  const traefik = parseTraefikLabels(service.labels, service.name);
  const traits: AppTraits = { routers: traefik.routers, middlewares: traefik.middlewares, state: readState(service.labels) };
  const policy = parsePolicy(service, defaults, traefik);
  return policy.ok ? { ok: true, app: { policy: policy.policy, ...traits } } : { ok: false, errors: policy.errors, app: traits };
}
