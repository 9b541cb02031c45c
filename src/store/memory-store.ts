/** The embedded default Store: one process, no persistence. Locks expire like Redis's PX. */
import { randomUUID } from 'node:crypto';
import type { AdminSession, AppRecord, Store, TimestampMap } from './store.js';

/** Sessions kept at most; the oldest goes first (every session needs a valid token to exist). */
export const DEFAULT_MAX_SESSIONS = 1000;

export class MemoryStore implements Store {
  private readonly activity = new Map<string, number>();
  private readonly locks = new Map<string, { token: string; until: number }>();
  private readonly records = new Map<string, AppRecord>();
  private readonly sessions = new Map<string, AdminSession>();
  private readonly timestampMaps = new Map<TimestampMap, Map<string, number>>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxSessions = DEFAULT_MAX_SESSIONS,
  ) {}

  async touch(app: string, at: number): Promise<void> {
    const current = this.activity.get(app);
    if (current === undefined || at > current) this.activity.set(app, at);
  }

  async lastActivity(app: string): Promise<number | undefined> {
    return this.activity.get(app);
  }

  async tryLock(key: string, ttlMs: number): Promise<string | null> {
    const held = this.locks.get(key);
    if (held && held.until > this.now()) return null;
    const token = randomUUID();
    this.locks.set(key, { token, until: this.now() + ttlMs });
    return token;
  }

  async unlock(key: string, token: string): Promise<boolean> {
    const held = this.locks.get(key);
    if (!held || held.token !== token || held.until <= this.now()) return false;
    this.locks.delete(key);
    return true;
  }

  async setRecord(app: string, patch: AppRecord): Promise<void> {
    this.records.set(app, { ...this.records.get(app), ...definedFields(patch) });
  }

  async getRecord(app: string): Promise<AppRecord> {
    const record = this.records.get(app);
    return record ? structuredClone(record) : {};
  }

  async putSession(key: string, session: AdminSession): Promise<void> {
    const now = this.now();
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
    // Map order is insertion order: the first key is the oldest session.
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value as string);
    this.sessions.set(key, { ...session });
  }

  async getSession(key: string): Promise<AdminSession | undefined> {
    const s = this.sessions.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    return { ...s };
  }

  async deleteSession(key: string): Promise<void> {
    this.sessions.delete(key);
  }

  async setTimestamp(map: TimestampMap, field: string, at: number | undefined): Promise<void> {
    const m = this.timestampMaps.get(map) ?? new Map<string, number>();
    if (at === undefined) m.delete(field);
    else m.set(field, Math.round(at)); // whole ms, as the Redis store keeps them
    this.timestampMaps.set(map, m);
  }

  async timestamps(map: TimestampMap): Promise<Map<string, number>> {
    return new Map(this.timestampMaps.get(map));
  }

  async close(): Promise<void> {
    this.timestampMaps.clear();
    this.sessions.clear();
    this.activity.clear();
    this.locks.clear();
    this.records.clear();
  }
}

function definedFields(patch: AppRecord): AppRecord {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
}
