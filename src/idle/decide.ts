/** The reaper's rules as one pure function, so each rule is unit-tested on its own. */

export interface IdleFacts {
  now: number;
  replicas: number;
  idleReplicas: number;
  /** Requests/connections open through the activator (any replica source that knows). */
  open: number;
  waking: boolean;
  /** Latest activity from every source and replica; undefined when none is known. */
  lastActivity: number | undefined;
  /** When this reaper first saw the app awake in its current awake stretch. */
  awakeSince: number;
  /** Last scale-up by the activator, undefined when unknown. */
  wokenAt: number | undefined;
  idleTimeoutMs: number;
  minAwakeMs: number;
  /** Inside a keep-awake window (or its lead time) of the app or its group: never down. */
  keepAwake?: boolean;
}

export type IdleDecision =
  | { action: 'skip'; reason: 'asleep' | 'open' | 'waking' | 'keep-awake' | 'min-awake' | 'active'; idleForMs: number }
  | { action: 'scale-down'; idleForMs: number };

/**
 * Never down while something is open, while a wake is in progress, or within min-awake of a wake.
 * An app seen awake with no activity at all (scaled up outside the activator) counts from the
 * moment it was first seen awake: it gets a full idle timeout, neither forever nor at once.
 */
export function decideIdle(f: IdleFacts): IdleDecision {
  const since = Math.max(f.lastActivity ?? -Infinity, f.awakeSince);
  const idleForMs = Math.max(0, f.now - since);
  if (f.replicas <= f.idleReplicas) return { action: 'skip', reason: 'asleep', idleForMs };
  if (f.open > 0) return { action: 'skip', reason: 'open', idleForMs: 0 };
  if (f.waking) return { action: 'skip', reason: 'waking', idleForMs };
  if (f.keepAwake) return { action: 'skip', reason: 'keep-awake', idleForMs };
  if (f.wokenAt !== undefined && f.now - f.wokenAt < f.minAwakeMs) return { action: 'skip', reason: 'min-awake', idleForMs };
  if (idleForMs < f.idleTimeoutMs) return { action: 'skip', reason: 'active', idleForMs };
  return { action: 'scale-down', idleForMs };
}
