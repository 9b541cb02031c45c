/**
 * The admin app (its own port, never routed by Traefik): health, readiness, metrics, app list,
 * and the ops API (idle timeout at runtime, sleep and wake now).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { AppRegistry } from '../discovery/app-registry.js';
import { formatDuration, parseDuration } from '../duration.js';
import type { IdleReaper, ScaleDownOutcome } from '../idle/reaper.js';
import type { TrafficTracker } from '../idle/traffic.js';
import { LABELS } from '../labels.js';
import type { Metrics } from '../metrics.js';
import type { SwarmClient } from '../swarm/swarm.js';
import type { WakeCoordinator, WakeFailure } from '../wake/coordinator.js';
import { sendProblem, toProblem } from './error-page.js';

export interface AdminDeps {
  registry: AppRegistry;
  coordinator: WakeCoordinator;
  traffic: TrafficTracker;
  metrics: Metrics;
  log: Logger;
  /** For PUT /api/apps/:service/idle-timeout (writes the label; tasks keep running). */
  swarm?: Pick<SwarmClient, 'updateServiceLabels'>;
  /** For POST /api/apps/:service/sleep. */
  reaper?: Pick<IdleReaper, 'scaleDown' | 'touch' | 'activity'>;
}

export const MIN_IDLE_TIMEOUT_MS = 1000;
export const MAX_IDLE_TIMEOUT_MS = 30 * 86_400_000;

const SLEEP_STATUS: Record<ScaleDownOutcome, number> = {
  'scaled-down': 200,
  'already-down': 200,
  'not-found': 404,
  busy: 409,
  locked: 409,
  conflict: 409,
  error: 500,
};

/** A failed wake as ops see it: what failed, when, and when the next request may wake the app. */
function wakeFailureView(f: WakeFailure | undefined, templateKey: string): { code: string; message: string; at: string; retryAt: string; failuresInARow: number } | null {
  if (!f || Date.now() >= f.retryAt || f.templateKey !== templateKey) return null;
  return { code: f.error.code, message: f.error.message, at: new Date(f.at).toISOString(), retryAt: new Date(f.retryAt).toISOString(), failuresInARow: f.streak };
}

function fail(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error, status, message });
}

export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const { registry, coordinator, traffic, metrics } = deps;
  // The cast picks Fastify's logger generic; without it the instance type is pino's Logger.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const app = Fastify({ loggerInstance: deps.log.child({ module: 'admin' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    if (!registry.synced) return reply.code(503).send({ ok: false, reason: 'service discovery has not completed yet' });
    return { ok: true, apps: registry.all().length };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/api/apps', async () =>
    registry.all().map((e) => ({
      service: e.policy.service,
      hosts: e.policy.hosts,
      group: e.policy.group,
      replicas: e.replicas,
      targetReplicas: e.policy.replicas,
      state: coordinator.isWaking(e.policy.service) ? 'waking' : (e.replicas ?? 0) > 0 ? 'awake' : 'asleep',
      idleTimeoutMs: e.policy.idleTimeoutMs,
      strategy: e.policy.strategy,
      open: traffic.open(e.policy.service),
      // Set while a failed wake holds further wakes back (POST …/wake ignores it).
      wakeFailure: wakeFailureView(coordinator.failureOf(e.policy.service), e.templateKey),
      // Every activity source this replica saw (own traffic, Traefik metrics, network bytes).
      lastActivity: deps.reaper?.activity.localLatest(e.policy.service) ?? traffic.lastActivity(e.policy.service) ?? null,
    })),
  );

  app.put<{ Params: { service: string }; Body: unknown }>('/api/apps/:service/idle-timeout', async (request, reply) => {
    const { service } = request.params;
    const entry = registry.byService(service);
    if (!entry) return fail(reply, 404, 'SA_NOT_FOUND', `no app named "${service}" is managed by this activator`);
    if (!deps.swarm) return fail(reply, 501, 'SA_NOT_CONFIGURED', 'this admin app has no Docker access');
    const raw = (request.body as { idleTimeout?: unknown } | undefined)?.idleTimeout;
    if (typeof raw !== 'string' || raw.trim() === '') return fail(reply, 400, 'SA_BAD_REQUEST', 'idleTimeout: expected a duration string such as "10m" or "1h30m"');
    let ms: number;
    try {
      ms = parseDuration(raw);
    } catch (err) {
      return fail(reply, 400, 'SA_BAD_REQUEST', `idleTimeout: ${(err as Error).message}`);
    }
    if (ms < MIN_IDLE_TIMEOUT_MS || ms > MAX_IDLE_TIMEOUT_MS) {
      return fail(reply, 400, 'SA_BAD_REQUEST', `idleTimeout: must be between ${formatDuration(MIN_IDLE_TIMEOUT_MS)} and ${formatDuration(MAX_IDLE_TIMEOUT_MS)}`);
    }
    // A label-only spec update: Swarm keeps the tasks running; the registry sees the update event
    // and the reaper uses the new value from its next check.
    const updated = await deps.swarm.updateServiceLabels(service, { [LABELS.idleTimeout]: raw.trim() });
    request.log.info({ app: service, idleTimeoutMs: ms, previousMs: entry.policy.idleTimeoutMs, version: updated.version }, 'idle timeout changed');
    return { service, idleTimeout: raw.trim(), idleTimeoutMs: ms, previousIdleTimeoutMs: entry.policy.idleTimeoutMs, version: updated.version };
  });

  app.post<{ Params: { service: string } }>('/api/apps/:service/sleep', async (request, reply) => {
    const { service } = request.params;
    const entry = registry.byService(service);
    if (!entry) return fail(reply, 404, 'SA_NOT_FOUND', `no app named "${service}" is managed by this activator`);
    if (!deps.reaper) return fail(reply, 501, 'SA_NOT_CONFIGURED', 'idle scale-down is not running in this activator');
    // Skips the idle timeout and min-awake; never cuts a connection open through the activator or a wake.
    const outcome = await deps.reaper.scaleDown(entry, { reason: 'sleep: ops API', force: true });
    return reply.code(SLEEP_STATUS[outcome]).send({ service, outcome });
  });

  app.post<{ Params: { service: string } }>('/api/apps/:service/wake', async (request, reply) => {
    const { service } = request.params;
    const entry = registry.byService(service);
    if (!entry) return fail(reply, 404, 'SA_NOT_FOUND', `no app named "${service}" is managed by this activator`);
    const started = performance.now();
    try {
      await coordinator.wakeNow(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000), 'ops API');
    } catch (err) {
      return sendProblem(request, reply, toProblem(err, 5));
    }
    deps.reaper?.touch(service); // a full idle timeout from now
    return { service, state: 'awake', ms: Math.round(performance.now() - started) };
  });
  return app;
}
