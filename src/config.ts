/** Environment → validated, frozen Config. Every error names the variable that caused it. */
import { readFileSync, statSync } from 'node:fs';
import { inspect } from 'node:util';
import bytes from 'bytes';
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { MAX_TIMER_MS, parseDuration } from './duration.js';
import { parseTimezone } from './idle/keep-awake.js';
import { redactUrl } from './redact.js';
import { STRATEGIES, type Strategy } from './labels.js';

/** A token read from a file: its value never shows in a log line, JSON or inspect output. */
export class AdminToken {
  readonly #value: string;
  constructor(
    value: string,
    /** The variable that named its file (for messages). */
    readonly source: string,
  ) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return `AdminToken(${this.source}, [redacted])`;
  }
}

/** Shortest token accepted: a guessable token would make the admin API an open door. */
export const MIN_TOKEN_LENGTH = 16;

export interface AdminTokens {
  /** Operator: every admin route. Unset (only with a read token): state-changing routes are off. */
  operate: AdminToken | undefined;
  /** Read-only: GET routes (app list, report, session). */
  read: AdminToken | undefined;
  /** When set, /metrics needs it (or an admin token); otherwise /metrics is public. */
  metrics: AdminToken | undefined;
}

export interface Config {
  host: string;
  port: number;
  /** Health, metrics and the ops API; never routed by Traefik. */
  adminPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** unix:///path or tcp://host:port; defaults to DOCKER_HOST, then the local socket. */
  dockerHost: string;
  /** Extra label a service must carry (key=value) to be managed by this activator. */
  selector: { key: string; value: string } | undefined;
  defaultNetwork: string | undefined;
  strategy: Strategy;
  wakeTimeoutMs: number;
  /** After a failed wake, requests get that failure at once for this long (doubling per failure, up to 5 min); 0: off. */
  wakeRetryBackoffMs: number;
  idleTimeoutMs: number;
  minAwakeMs: number;
  idleCheckIntervalMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  maxBodyBytes: number;
  maxHeldPerApp: number;
  dockerConcurrency: number;
  resyncIntervalMs: number;
  retryAfterSeconds: number;
  redisUrl: string | undefined;
  /** Prefix of every key the activator writes in Redis (several activator sets can share one). */
  redisPrefix: string;
  traefikMetricsUrl: string | undefined;
  traefikMetricsIntervalMs: number;
  networkStatsIntervalMs: number;
  /** rx+tx growth of an app's container per network-stats poll that counts as activity (more than this). */
  networkActivityBytes: number;
  monitorUserAgents: RegExp | undefined;
  monitorPaths: RegExp | undefined;
  monitorStatus: number;
  /** Path prefix the waiting page uses on an app's own Host (e.g. <prefix>/wait). */
  internalPrefix: string;
  /** Folder of waiting-page templates (label swarm-activator.waiting-page.template names a file in it). */
  waitingPageDir: string | undefined;
  /** Live dashboard streams (GET /api/events) open at once; more get 503. */
  dashboardMaxClients: number;
  /** IANA time zone of keep-awake windows whose service has no timezone label. */
  timezone: string;
  adminTokens: AdminTokens;
  /** How long an admin console login lasts. */
  adminSessionTtlMs: number;
  /** Admin sessions kept at most (memory store; the oldest goes first). */
  adminMaxSessions: number;
  // --- bounds on what clients can make the activator hold (docs/security.md) ---
  /** Peers whose X-Forwarded-* are believed: CIDRs, addresses, or `local-networks`. */
  trustedProxies: string[];
  /** Requests held for wakes, all apps together. */
  maxHeldTotal: number;
  /** Request body bytes buffered at once, all requests together. */
  maxBufferedBodyBytes: number;
  /** Time a client has to send its request head (slowloris). */
  headersTimeoutMs: number;
  /** Time a client has to send its whole request, head and body. */
  requestTimeoutMs: number;
  /** Bytes a client may send after an upgrade request before the upgrade is answered. */
  maxUpgradeEarlyBytes: number;
  /** Open client connections on the proxy port. */
  maxConnections: number;
  /** File holding the Redis password (a Swarm secret), used with ACTIVATOR_REDIS_URL. */
  redisPasswordFile: string | undefined;
  /**
   * The Traefik provider (src/traefik/): the token Traefik sends to fetch the dynamic configuration
   * (a Swarm secret). Unset: the provider is off, and apps whose routers need their own path fail closed.
   */
  traefikProviderToken: AdminToken | undefined;
  /** The activator's own Traefik service, which our routers name (default swarm-activator@swarm). */
  traefikActivatorService: string;
  /** Before a scale-down, how long to wait for every Traefik instance to fetch the raised priority. */
  traefikHandoffTimeoutMs: number;
  /**
   * Traefik's swarm provider refresh (its `providers.swarm.refreshSeconds`): after a wake the
   * activator's routers keep the app this long (+ Traefik's 2 s throttle + 1 s), until Traefik's own
   * router has the new task's address.
   */
  traefikSwarmRefreshMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const read = <T>(key: string, fallback: T, parse: (raw: string) => T): T => {
    const raw = env[key];
    if (raw === undefined || raw.trim() === '') return fallback;
    try {
      return parse(raw.trim());
    } catch (err) {
      throw new ConfigError(key, `${(err as Error).message} (got "${redactUrl(raw)}")`);
    }
  };
  const int = (min: number, max: number) => (raw: string) => {
    if (!/^\d+$/.test(raw)) throw new Error('not a whole number');
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}`);
    return n;
  };
  const duration = (min: number) => (raw: string) => {
    const ms = parseDuration(raw);
    if (ms < min) throw new Error(`must be at least ${min}ms`);
    // Node's timers fire at once from 2^31 ms on (about 24.8 days).
    if (ms > MAX_TIMER_MS) throw new Error(`must be at most ${MAX_TIMER_MS}ms (about 24 days)`);
    return ms;
  };
  const regex = (raw: string) => new RegExp(raw, 'i');
  const size = (raw: string) => {
    const n = bytes.parse(raw);
    if (n === null || !Number.isFinite(n) || n < 1) throw new Error('must be a size such as 64kb or 256mb');
    return n;
  };
  const url = (raw: string) => new URL(raw).toString();

  const tokenFile = (key: string): AdminToken | undefined =>
    read(key, undefined, (path) => {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        throw new Error(`cannot read the token file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
      const token = text.trim();
      if (token === '') throw new Error(`the token file ${path} is empty`);
      if (token.length < MIN_TOKEN_LENGTH) throw new Error(`the token in ${path} is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`);
      return new AdminToken(token, key);
    });
  const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  const config: Config = {
    host: read('ACTIVATOR_HOST', '0.0.0.0', (v) => v),
    port: read('ACTIVATOR_PORT', 8080, int(0, 65535)),
    adminPort: read('ACTIVATOR_ADMIN_PORT', 8081, int(0, 65535)),
    logLevel: read('ACTIVATOR_LOG_LEVEL', 'info', (v) => {
      if (!(logLevels as readonly string[]).includes(v)) throw new Error(`must be one of ${logLevels.join(', ')}`);
      return v as Config['logLevel'];
    }),
    dockerHost: read('ACTIVATOR_DOCKER_HOST', env.DOCKER_HOST?.trim() || 'unix:///var/run/docker.sock', (v) => {
      if (!/^(unix|tcp|http|https):\/\//.test(v)) throw new Error('must start with unix://, tcp://, http:// or https://');
      return v;
    }),
    selector: read('ACTIVATOR_SELECTOR', undefined, (v) => {
      const m = /^([^=\s]+)=(.*)$/.exec(v);
      if (!m) throw new Error('must be key=value');
      return { key: m[1] as string, value: m[2] as string };
    }),
    defaultNetwork: read('ACTIVATOR_NETWORK', undefined, (v) => v),
    strategy: read('ACTIVATOR_STRATEGY', 'blocking', (v) => {
      if (!(STRATEGIES as readonly string[]).includes(v)) throw new Error(`must be one of ${STRATEGIES.join(', ')}`);
      return v as Strategy;
    }),
    wakeTimeoutMs: read('ACTIVATOR_WAKE_TIMEOUT', 60_000, duration(100)),
    wakeRetryBackoffMs: read('ACTIVATOR_WAKE_RETRY_BACKOFF', 10_000, duration(0)),
    idleTimeoutMs: read('ACTIVATOR_IDLE_TIMEOUT', 30 * 60_000, duration(1000)),
    minAwakeMs: read('ACTIVATOR_MIN_AWAKE', 60_000, duration(0)),
    idleCheckIntervalMs: read('ACTIVATOR_IDLE_CHECK_INTERVAL', 10_000, duration(100)),
    probeIntervalMs: read('ACTIVATOR_PROBE_INTERVAL', 20, duration(1)),
    probeTimeoutMs: read('ACTIVATOR_PROBE_TIMEOUT', 1000, duration(10)),
    maxBodyBytes: read('ACTIVATOR_MAX_BODY', 10 * 1024 * 1024, (v) => {
      const n = bytes.parse(v);
      if (n === null || !Number.isFinite(n) || n < 0) throw new Error('must be a size such as 512kb or 10mb');
      return n;
    }),
    maxHeldPerApp: read('ACTIVATOR_MAX_HELD_PER_APP', 1000, int(1, 1_000_000)),
    dockerConcurrency: read('ACTIVATOR_DOCKER_CONCURRENCY', 8, int(1, 256)),
    resyncIntervalMs: read('ACTIVATOR_RESYNC_INTERVAL', 30_000, duration(1000)),
    retryAfterSeconds: read('ACTIVATOR_RETRY_AFTER', 5, int(1, 3600)),
    redisUrl: read('ACTIVATOR_REDIS_URL', undefined, (v) => {
      if (!/^rediss?:\/\//.test(v)) throw new Error('must start with redis:// or rediss://');
      return v;
    }),
    redisPrefix: read('ACTIVATOR_REDIS_PREFIX', 'swarm-activator:', (v) => {
      if (!/^[A-Za-z0-9:._-]+$/.test(v)) throw new Error('must be letters, digits and : . _ -');
      return v;
    }),
    traefikMetricsUrl: read('ACTIVATOR_TRAEFIK_METRICS_URL', undefined, url),
    traefikMetricsIntervalMs: read('ACTIVATOR_TRAEFIK_METRICS_INTERVAL', 5000, duration(100)),
    networkStatsIntervalMs: read('ACTIVATOR_NETWORK_STATS_INTERVAL', 10_000, duration(100)),
    networkActivityBytes: read('ACTIVATOR_NETWORK_ACTIVITY_BYTES', 1024, (v) => {
      const n = bytes.parse(v);
      if (n === null || !Number.isFinite(n) || n < 0) throw new Error('must be a size such as 1kb or 4096');
      return n;
    }),
    monitorUserAgents: read('ACTIVATOR_MONITOR_USER_AGENTS', undefined, regex),
    monitorPaths: read('ACTIVATOR_MONITOR_PATHS', undefined, regex),
    monitorStatus: read('ACTIVATOR_MONITOR_STATUS', 200, int(100, 599)),
    internalPrefix: read('ACTIVATOR_INTERNAL_PREFIX', '/__activator', (v) => {
      if (!/^\/[A-Za-z0-9._~/-]+$/.test(v) || v.endsWith('/')) throw new Error('must be a path such as /__activator');
      return v;
    }),
    waitingPageDir: read('ACTIVATOR_WAITING_PAGE_DIR', undefined, (v) => {
      if (!isAbsolute(v)) throw new Error('must be an absolute path');
      const info = statSync(v, { throwIfNoEntry: false });
      if (!info) throw new Error('no such folder');
      if (!info.isDirectory()) throw new Error('not a folder');
      return v;
    }),
    dashboardMaxClients: read('ACTIVATOR_DASHBOARD_MAX_CLIENTS', 32, int(1, 10_000)),
    timezone: read('ACTIVATOR_TIMEZONE', 'UTC', parseTimezone),
    adminTokens: {
      operate: tokenFile('ACTIVATOR_ADMIN_TOKEN_FILE'),
      read: tokenFile('ACTIVATOR_ADMIN_READ_TOKEN_FILE'),
      metrics: tokenFile('ACTIVATOR_METRICS_TOKEN_FILE'),
    },
    adminSessionTtlMs: read('ACTIVATOR_ADMIN_SESSION_TTL', 12 * 3_600_000, (v) => {
      const ms = parseDuration(v);
      if (ms < 60_000 || ms > 30 * 86_400_000) throw new Error('must be between 1m and 30d');
      return ms;
    }),
    adminMaxSessions: read('ACTIVATOR_ADMIN_MAX_SESSIONS', 1000, int(1, 100_000)),
    trustedProxies: read('ACTIVATOR_TRUSTED_PROXIES', ['local-networks'], (v) => {
      const list = v.split(',').map((x) => x.trim()).filter(Boolean);
      for (const item of list) if (item !== 'local-networks' && item !== 'none' && !isAddressOrCidr(item)) throw new Error(`"${item}" is not an IP address, a CIDR, local-networks or none`);
      return list.filter((x) => x !== 'none');
    }),
    maxHeldTotal: read('ACTIVATOR_MAX_HELD', 10_000, int(1, 1_000_000)),
    maxBufferedBodyBytes: read('ACTIVATOR_MAX_BUFFERED_BODY', 128 * 1024 * 1024, size),
    headersTimeoutMs: read('ACTIVATOR_HEADERS_TIMEOUT', 10_000, duration(100)),
    requestTimeoutMs: read('ACTIVATOR_REQUEST_TIMEOUT', 30_000, duration(100)),
    maxUpgradeEarlyBytes: read('ACTIVATOR_MAX_UPGRADE_EARLY_BYTES', 64 * 1024, size),
    maxConnections: read('ACTIVATOR_MAX_CONNECTIONS', 20_000, int(1, 1_000_000)),
    redisPasswordFile: read('ACTIVATOR_REDIS_PASSWORD_FILE', undefined, (v) => v),
    traefikProviderToken: tokenFile('ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE'),
    traefikHandoffTimeoutMs: read('ACTIVATOR_TRAEFIK_HANDOFF_TIMEOUT', 15_000, duration(1000)),
    // Traefik's default refreshSeconds is 15; stack/traefik.yml sets 5 (and stack/activator.yml says so).
    traefikSwarmRefreshMs: read('ACTIVATOR_TRAEFIK_SWARM_REFRESH', 15_000, duration(1000)),
    traefikActivatorService: read('ACTIVATOR_TRAEFIK_SERVICE', 'swarm-activator@swarm', (v) => {
      if (!/^[A-Za-z0-9_-]+@[A-Za-z0-9_-]+$/.test(v)) throw new Error('must be a Traefik service reference name@provider, e.g. swarm-activator@swarm');
      return v;
    }),
  };
  if (config.requestTimeoutMs < config.headersTimeoutMs) throw new ConfigError('ACTIVATOR_REQUEST_TIMEOUT', `must be at least ACTIVATOR_HEADERS_TIMEOUT (${config.headersTimeoutMs} ms)`);
  // After every other key, so a bad value elsewhere is reported as itself.
  if (!config.adminTokens.operate && !config.adminTokens.read) {
    throw new ConfigError(
      'ACTIVATOR_ADMIN_TOKEN_FILE',
      'not set: the admin API needs an operator token file (e.g. the Swarm secret /run/secrets/activator-admin-token); with only ACTIVATOR_ADMIN_READ_TOKEN_FILE it starts read-only',
    );
  }
  const named = [config.adminTokens.operate, config.adminTokens.read, config.adminTokens.metrics, config.traefikProviderToken].filter((x): x is AdminToken => x !== undefined);
  for (const [i, a] of named.entries()) {
    const twin = named.slice(i + 1).find((b) => b.reveal() === a.reveal());
    if (twin) throw new ConfigError(twin.source, `holds the same token as ${a.source}; each role needs its own token`);
  }
  return Object.freeze(config);
}

function isAddressOrCidr(text: string): boolean {
  const [ip = '', bits, extra] = text.split('/');
  const family = isIP(ip);
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
