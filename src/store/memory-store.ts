/** The embedded default Store: one process, no persistence. Locks expire like Redis's PX. */
import { randomUUID } from 'node:crypto';
import type { AppRecord, Store } from './store.js';

export class MemoryStore implements Store {
  private readonly activity = new Map<string, number>();
  private readonly locks = new Map<string, { token: string; until: number }>();
  private readonly records = new Map<string, AppRecord>();

  constructor(private readonly now: () => number = Date.now) {}

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

  async close(): Promise<void> {
    this.activity.clear();
    this.locks.clear();
    this.records.clear();
  }
}

function definedFields(patch: AppRecord): AppRecord {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
}
