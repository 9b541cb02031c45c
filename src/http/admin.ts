/** The admin app (its own port, never routed by Traefik): health, readiness, metrics, app list. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppRegistry } from '../discovery/app-registry.js';
import type { TrafficTracker } from '../idle/traffic.js';
import type { Metrics } from '../metrics.js';
import type { WakeCoordinator } from '../wake/coordinator.js';

export interface AdminDeps {
  registry: AppRegistry;
  coordinator: WakeCoordinator;
  traffic: TrafficTracker;
  metrics: Metrics;
  log: Logger;
}

export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const { registry, coordinator, traffic, metrics } = deps;
  const app = Fastify({ loggerInstance: deps.log.child({ module: 'admin' }) as FastifyBaseLogger, disableRequestLogging: true });

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
      lastActivity: traffic.lastActivity(e.policy.service) ?? null,
    })),
  );
  return app;
}
