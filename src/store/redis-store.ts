/**
 * Store on Redis, shared by several activator replicas.
 *   activity:<app>  epoch ms of the latest activity; a Lua max so concurrent touches never go back
 *   lock:<key>      SET NX PX with a random token; unlock is a Lua compare-and-delete
 *   record:<app>    hash: wokenAt (ms), lastScaleDown (JSON)
 *   session:<key>   an admin session (role, expiresAt as JSON), PX until it expires
 * Every key carries the configured prefix, and activity and records expire after RETENTION_MS.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StoreError, type AdminSession, type AppRecord, type Store, type TimestampMap } from './store.js';

export const DEFAULT_REDIS_PREFIX = 'swarm-activator:';
const RETENTION_MS = 30 * 24 * 3600 * 1000;

const TOUCH_MAX = `
local current = tonumber(redis.call('GET', KEYS[1]))
local at = tonumber(ARGV[1])
if current == nil or at > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`;

const COMPARE_AND_DELETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

type ScriptedRedis = Redis & {
  saTouchMax(key: string, at: string, retentionMs: string): Promise<number>;
  saCompareAndDelete(key: string, token: string): Promise<number>;
};

export interface RedisStoreOptions {
  url: string;
  /** AUTH password (from a Swarm secret file); overrides one in the URL. Never logged. */
  password?: string;
  prefix?: string;
  /** Per-command timeout; a slow Redis fails the call rather than stalling the idle check. */
  commandTimeoutMs?: number;
  log?: Logger;
}

export class RedisStore implements Store {
  private readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private lastErrorLog = 0;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    const redis = new Redis(options.url, {
      ...(options.password !== undefined ? { password: options.password } : {}),
      connectTimeout: 2000,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(100 * 2 ** times, 5000),
    });
    redis.defineCommand('saTouchMax', { numberOfKeys: 1, lua: TOUCH_MAX });
    redis.defineCommand('saCompareAndDelete', { numberOfKeys: 1, lua: COMPARE_AND_DELETE });
    redis.on('error', (err: Error) => {
      // ioredis reconnects on its own; log at most every 10 s so an outage doesn't flood the log.
      if (Date.now() - this.lastErrorLog < 10_000) return;
      this.lastErrorLog = Date.now();
      options.log?.warn({ err }, 'redis connection error');
    });
    this.redis = redis as ScriptedRedis;
  }

  private key(kind: string, name: string): string {
    return `${this.prefix}${kind}:${name}`;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreError(`redis ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async touch(app: string, at: number): Promise<void> {
    await this.call('touch', () => this.redis.saTouchMax(this.key('activity', app), String(Math.round(at)), String(RETENTION_MS)));
  }

  async lastActivity(app: string): Promise<number | undefined> {
    const raw = await this.call('get activity', () => this.redis.get(this.key('activity', app)));
    const at = raw === null ? NaN : Number(raw);
    return Number.isFinite(at) ? at : undefined;
  }

  async tryLock(key: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID();
    const ok = await this.call('lock', () => this.redis.set(this.key('lock', key), token, 'PX', Math.max(1, Math.round(ttlMs)), 'NX'));
    return ok === 'OK' ? token : null;
  }

  async unlock(key: string, token: string): Promise<boolean> {
    const deleted = await this.call('unlock', () => this.redis.saCompareAndDelete(this.key('lock', key), token));
    return deleted === 1;
  }

  async setRecord(app: string, patch: AppRecord): Promise<void> {
    const fields: Record<string, string> = {};
    if (patch.wokenAt !== undefined) fields.wokenAt = String(patch.wokenAt);
    if (patch.lastScaleDown !== undefined) fields.lastScaleDown = JSON.stringify(patch.lastScaleDown);
    if (Object.keys(fields).length === 0) return;
    const key = this.key('record', app);
    await this.call('set record', () => this.redis.multi().hset(key, fields).pexpire(key, RETENTION_MS).exec());
  }

  async getRecord(app: string): Promise<AppRecord> {
    const raw = await this.call('get record', () => this.redis.hgetall(this.key('record', app)));
    const record: AppRecord = {};
    const wokenAt = Number(raw.wokenAt);
    if (raw.wokenAt !== undefined && Number.isFinite(wokenAt)) record.wokenAt = wokenAt;
    if (raw.lastScaleDown !== undefined) {
      try {
        const parsed = JSON.parse(raw.lastScaleDown) as { at?: unknown; reason?: unknown };
        if (typeof parsed.at === 'number' && typeof parsed.reason === 'string') record.lastScaleDown = { at: parsed.at, reason: parsed.reason };
      } catch {
        // a foreign or corrupt value: ignore it rather than fail the idle check
      }
    }
    return record;
  }

  async putSession(key: string, session: AdminSession): Promise<void> {
    const ttlMs = Math.round(session.expiresAt - Date.now());
    if (ttlMs <= 0) return;
    await this.call('put session', () => this.redis.set(this.key('session', key), JSON.stringify(session), 'PX', ttlMs));
  }

  async getSession(key: string): Promise<AdminSession | undefined> {
    const raw = await this.call('get session', () => this.redis.get(this.key('session', key)));
    if (raw === null) return undefined;
    try {
      const parsed = JSON.parse(raw) as { role?: unknown; expiresAt?: unknown };
      if ((parsed.role === 'read' || parsed.role === 'operate') && typeof parsed.expiresAt === 'number' && parsed.expiresAt > Date.now()) {
        return { role: parsed.role, expiresAt: parsed.expiresAt };
      }
    } catch {
      // a foreign or corrupt value is no session
    }
    return undefined;
  }

  async deleteSession(key: string): Promise<void> {
    await this.call('delete session', () => this.redis.del(this.key('session', key)));
  }

  async setTimestamp(map: TimestampMap, field: string, at: number | undefined): Promise<void> {
    const key = this.key('timestamps', map);
    if (at === undefined) await this.call(`clear ${map}`, () => this.redis.hdel(key, field));
    else await this.call(`set ${map}`, () => this.redis.multi().hset(key, field, String(Math.round(at))).pexpire(key, RETENTION_MS).exec());
  }

  async timestamps(map: TimestampMap): Promise<Map<string, number>> {
    const raw = await this.call(`get ${map}`, () => this.redis.hgetall(this.key('timestamps', map)));
    const out = new Map<string, number>();
    for (const [field, value] of Object.entries(raw)) {
      const at = Number(value);
      if (Number.isFinite(at)) out.set(field, at);
    }
    return out;
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
