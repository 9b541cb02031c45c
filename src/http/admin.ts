/**
 * The admin app (its own port; ops reach it directly or through an authenticated router of their
 * own): health, readiness, metrics, app list, and the ops API (idle timeout at runtime, sleep and
 * wake now). Every route but /healthz, /readyz (and /metrics without a metrics token) needs a
 * token or a session: src/http/admin-auth.ts.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppSettings } from '../apps/app-settings.js';
import type { AppRegistry } from '../discovery/app-registry.js';
import { ActivatorError } from '../errors.js';
import { formatDuration, parseDuration } from '../duration.js';
import { savingsReport, type SavingsInput } from '../savings/savings.js';
import type { IdleReaper, ScaleDownOutcome } from '../idle/reaper.js';
import type { TrafficTracker } from '../idle/traffic.js';
import type { Metrics } from '../metrics.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import type { WakeHistory } from '../wake/wake-history.js';
import { appViews, type AppViewDeps } from './app-view.js';
import { registerDashboard } from './dashboard.js';
import { registerKeepAwakeRoutes } from './keep-awake-routes.js';
import { installAdminAuth, type AdminAuthOptions } from './admin-auth.js';
import { ADMIN_RETRY_AFTER_SECONDS, sendProblem, toProblem } from './error-page.js';

export interface AdminDeps {
  registry: AppRegistry;
  coordinator: WakeCoordinator;
  traffic: TrafficTracker;
  metrics: Metrics;
  log: Logger;
  /** Tokens and sessions: every route is covered (admin-auth.ts). */
  auth: AdminAuthOptions;
  /** For PUT /api/apps/:service/idle-timeout and /keep-awake (label writes; tasks keep running). */
  settings?: AppSettings;
  /** For POST /api/apps/:service/sleep. */
  reaper?: Pick<IdleReaper, 'scaleDown' | 'touch' | 'activity'>;
  /** Recent wakes per app (the dashboard, /api/apps). */
  history?: WakeHistory;
  /** Live dashboard streams open at once (ACTIVATOR_DASHBOARD_MAX_CLIENTS). */
  dashboardMaxClients?: number;
  /** For GET /api/report and the savings in /api/apps: every app's savings facts. */
  savings?: () => SavingsInput[];
  /** The Traefik provider's view of each app in /api/apps. */
  traefik?: AppViewDeps['traefik'];
}

export const MIN_IDLE_TIMEOUT_MS = 1000;
/** 24 days: a label past 2^31 ms (24.8 days) is refused by parsePolicy (Node timers cannot hold it). */
export const MAX_IDLE_TIMEOUT_MS = 24 * 86_400_000;

const SLEEP_STATUS: Record<ScaleDownOutcome, number> = {
  'scaled-down': 200,
  'already-down': 200,
  'not-found': 404,
  busy: 409,
  locked: 409,
  conflict: 409,
  error: 500,
};

function notManaged(service: string): ActivatorError {
  return new ActivatorError('SA_NOT_FOUND', `no app named "${service}" is managed by this activator`);
}

export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const { registry, coordinator, metrics } = deps;
  // The cast picks Fastify's logger generic; without it the instance type is pino's Logger.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const app = Fastify({ loggerInstance: deps.log.child({ module: 'admin' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  // First, so that the hook covers every route registered after it.
  await installAdminAuth(app, deps.auth);
  // Every error answer is a row of the error table (src/errors.ts), in JSON.
  app.setErrorHandler((err, request, reply) => {
    const problem = toProblem(err, ADMIN_RETRY_AFTER_SECONDS);
    if (problem.status >= 500) request.log.warn({ err, detail: problem.detail, url: request.url }, `admin ${request.method} ${request.url}: ${problem.code}`);
    return sendProblem(reply, problem, false);
  });
  app.setNotFoundHandler((request) => {
    throw new ActivatorError('SA_NOT_FOUND', `no admin route ${request.method} ${request.url.split('?')[0] ?? ''}`);
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    if (!registry.synced) return reply.code(503).send({ ok: false, reason: 'service discovery has not completed yet' });
    return { ok: true, apps: registry.all().length };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/api/apps', async () => appViews(registry.all(), deps));

  app.get<{ Querystring: { since?: string } }>('/api/report', async (request) => {
    const raw = request.query.since;
    let from: number | undefined;
    if (raw !== undefined && raw !== '' && raw !== 'all') {
      let ms: number;
      try {
        ms = parseDuration(raw);
      } catch (err) {
        throw new ActivatorError('SA_BAD_REQUEST', `since: ${(err as Error).message}`);
      }
      if (ms <= 0) throw new ActivatorError('SA_BAD_REQUEST', 'since: must be longer than 0 (e.g. 7d), or "all"');
      from = Date.now() - ms;
    }
    return savingsReport(deps.savings?.() ?? [], { from, to: Date.now() });
  });

  app.put<{ Params: { service: string }; Body: unknown }>('/api/apps/:service/idle-timeout', async (request) => {
    const { service } = request.params;
    const entry = registry.byService(service);
    if (!entry) throw notManaged(service);
    if (!deps.settings) throw new ActivatorError('SA_NOT_CONFIGURED', 'this admin app has no Docker access');
    const raw = (request.body as { idleTimeout?: unknown } | undefined)?.idleTimeout;
    if (typeof raw !== 'string' || raw.trim() === '') throw new ActivatorError('SA_BAD_REQUEST', 'idleTimeout: expected a duration string such as "10m" or "1h30m"');
    let ms: number;
    try {
      ms = parseDuration(raw);
    } catch (err) {
      throw new ActivatorError('SA_BAD_REQUEST', `idleTimeout: ${(err as Error).message}`);
    }
    if (ms < MIN_IDLE_TIMEOUT_MS || ms > MAX_IDLE_TIMEOUT_MS) {
      throw new ActivatorError('SA_BAD_REQUEST', `idleTimeout: must be between ${formatDuration(MIN_IDLE_TIMEOUT_MS)} and ${formatDuration(MAX_IDLE_TIMEOUT_MS)}`);
    }
    // The registry sees the update event and the reaper uses the new value from its next check.
    const updated = await deps.settings.setIdleTimeout(service, raw.trim());
    request.log.info({ app: service, idleTimeoutMs: ms, previousMs: entry.policy.idleTimeoutMs, version: updated.version }, 'idle timeout changed');
    return { service, idleTimeout: raw.trim(), idleTimeoutMs: ms, previousIdleTimeoutMs: entry.policy.idleTimeoutMs, version: updated.version };
  });

  app.post<{ Params: { service: string } }>('/api/apps/:service/sleep', async (request, reply) => {
    const { service } = request.params;
    const entry = registry.byService(service);
    if (!entry) throw notManaged(service);
    if (!deps.reaper) throw new ActivatorError('SA_NOT_CONFIGURED', 'idle scale-down is not running in this activator');
    // Skips the idle timeout and min-awake; never cuts a connection open through the activator or a wake.
    const outcome = await deps.reaper.scaleDown(entry, { reason: 'sleep: ops API', force: true });
    return reply.code(SLEEP_STATUS[outcome]).send({ service, outcome });
  });

  app.post<{ Params: { service: string } }>('/api/apps/:service/wake', async (request) => {
    const { service } = request.params;
    const entry = registry.byService(service);
    if (!entry) throw notManaged(service);
    const started = performance.now();
    await coordinator.wakeNow(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000), 'ops API');
    deps.reaper?.touch(service); // a full idle timeout from now
    return { service, state: 'awake', ms: Math.round(performance.now() - started) };
  });

  registerDashboard(app, deps);
  registerKeepAwakeRoutes(app, deps);
  return app;
}
