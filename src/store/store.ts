/**
 * Shared state of the idle path: when each app last saw activity, who may scale it down now
 * (a lock), and a small per-app record for ops. The memory store is the embedded default; the
 * Redis store lets several activator replicas agree (the reaper locks before it scales down, and
 * every replica touches the store with its own traffic).
 */

export interface ScaleDownRecord {
  at: number;
  reason: string;
}

/** Per-app facts the reaper and the ops API keep; every field is optional and merged on write. */
export interface AppRecord {
  /** When the activator last scaled the app up (min-awake starts here). */
  wokenAt?: number;
  lastScaleDown?: ScaleDownRecord;
}

/** What an admin console session may do (src/http/admin-auth.ts). */
export type SessionRole = 'read' | 'operate';

export interface AdminSession {
  role: SessionRole;
  /** Epoch ms; the store forgets the session then. */
  expiresAt: number;
}

export type TimestampMap = 'traefik-handoff' | 'traefik-release' | 'traefik-fetch';

export interface Store {
  /** Records activity at `at` (epoch ms); keeps the maximum, so late or out-of-order writes are harmless. */
  touch(app: string, at: number): Promise<void>;
  /** Latest activity recorded for the app (epoch ms), undefined when none. */
  lastActivity(app: string): Promise<number | undefined>;
  /** Takes `key` for `ttlMs` if nobody holds it; returns the token that unlocks it, or null. */
  tryLock(key: string, ttlMs: number): Promise<string | null>;
  /** Releases `key` only if it is still held with `token`; returns whether it did. */
  unlock(key: string, token: string): Promise<boolean>;
  /** Merges the given fields into the app's record. */
  setRecord(app: string, patch: AppRecord): Promise<void>;
  getRecord(app: string): Promise<AppRecord>;
  /**
   * Admin console sessions, keyed by a digest of the cookie value (never the value itself), shared
   * by every replica so a login works whichever one Traefik picks. Expired sessions are not returned.
   */
  putSession(key: string, session: AdminSession): Promise<void>;
  getSession(key: string): Promise<AdminSession | undefined>;
  deleteSession(key: string): Promise<void>;
  /**
   * Small shared maps of epoch-ms timestamps (the Traefik provider's handoffs, and when each Traefik
   * instance last fetched its configuration from any replica): `at` undefined removes the field.
   */
  setTimestamp(map: TimestampMap, field: string, at: number | undefined): Promise<void>;
  timestamps(map: TimestampMap): Promise<Map<string, number>>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
