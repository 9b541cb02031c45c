/**
 * Builds the whole activator from a validated Config (adapters, discovery, wake, idle, both HTTP
 * apps) without listening: main.ts listens; tests can run the same thing in-process.
 */
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from './config.js';
import type { Logger } from './log.js';
import { AppSettings } from './apps/app-settings.js';
import { AppRegistry } from './discovery/app-registry.js';
import { buildAdminApp } from './http/admin.js';
import { buildProxyApp } from './http/app.js';
import type { ActivitySource } from './idle/activity-source.js';
import { KeepAwakeScheduler } from './idle/keep-awake-scheduler.js';
import { IdleReaper } from './idle/reaper.js';
import { ScaleDownGuard } from './idle/scale-down-guard.js';
import { NetworkBytesSource } from './idle/sources/network-bytes.js';
import { OwnTrafficSource } from './idle/sources/own-traffic.js';
import { TraefikMetricsSource } from './idle/sources/traefik-metrics.js';
import { OwnTraffic } from './idle/traffic.js';
import { Metrics } from './metrics.js';
import { savingsInput } from './savings/savings.js';
import { MemoryStore } from './store/memory-store.js';
import { RedisStore } from './store/redis-store.js';
import { DockerodeSwarm } from './swarm/dockerode-swarm.js';
import { createQueuedSwarm } from './swarm/queued-swarm.js';
import { WakeCoordinator } from './wake/coordinator.js';
import { redactUrl } from './redact.js';
import { PROVIDER_PATH, registerProviderRoute, TraefikProvider } from './traefik/provider.js';
import { ReadinessProbe } from './wake/readiness.js';
import { TaskStarts } from './wake/task-starts.js';
import { WakeHistory } from './wake/wake-history.js';


export interface Activator {
  proxyApp: FastifyInstance;
  adminApp: FastifyInstance;
  registry: AppRegistry;
  coordinator: WakeCoordinator;
  reaper: IdleReaper;
  metrics: Metrics;
  /** Discovery first (so the first requests find their apps), then the admin and proxy ports. */
  listen(): Promise<void>;
  close(): Promise<void>;
}

export async function createActivator(config: Readonly<Config>, log: Logger, options: { defaultMetrics?: boolean } = {}): Promise<Activator> {
  const metrics = new Metrics(options);
  const docker = new DockerodeSwarm({ dockerHost: config.dockerHost, log: log.child({ module: 'swarm' }) });
  const swarm = createQueuedSwarm(docker, config.dockerConcurrency, metrics);
  const taskStarts = new TaskStarts();
  const registry = new AppRegistry({
    swarm,
    onTaskContainerStart: (taskId) => taskStarts.add(taskId),
    defaults: {
      strategy: config.strategy,
      wakeTimeoutMs: config.wakeTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      minAwakeMs: config.minAwakeMs,
      network: config.defaultNetwork,
      timezone: config.timezone,
    },
    selector: config.selector,
    resyncIntervalMs: config.resyncIntervalMs,
    log: log.child({ module: 'discovery' }),
  });
  const readiness = new ReadinessProbe(swarm, config.probeTimeoutMs, taskStarts);
  const traffic = new OwnTraffic(metrics);
  const store = config.redisUrl ? new RedisStore({ url: config.redisUrl, prefix: config.redisPrefix, log: log.child({ module: 'store' }), ...redisPassword(config) }) : new MemoryStore(Date.now, config.adminMaxSessions);
  // Always on for the route guard (middleware catalog); serves Traefik only with its token.
  const traefik = new TraefikProvider({ registry, swarm, metrics, store, log: log.child({ module: 'traefik-provider' }), token: config.traefikProviderToken, activatorService: config.traefikActivatorService, catalogRefreshMs: config.resyncIntervalMs, handoffTimeoutMs: config.traefikHandoffTimeoutMs, swarmRefreshMs: config.traefikSwarmRefreshMs });
  // Wakes wait for a scale-down in flight on the same service, then scale back up (src/idle/scale-down-guard.ts).
  const guard = new ScaleDownGuard();
  // eslint-disable-next-line prefer-const -- assigned below: the coordinator and the reaper refer to each other
  let reaper: IdleReaper | undefined;
  const history = new WakeHistory();
  const coordinator = new WakeCoordinator({
    history,
    registry,
    swarm: guard.wrap(swarm),
    readiness,
    metrics,
    log: log.child({ module: 'wake' }),
    probeIntervalMs: config.probeIntervalMs,
    retryBackoffMs: config.wakeRetryBackoffMs,
    // Must-hold 4: the activator's routers keep a waking app until Traefik's own router has its new
    // task (src/traefik/handoff.ts); a request proxied for an app that was awake changes nothing.
    onScaledUp: (service) => {
      if (traefik.enabled) void traefik.handoffs.hold([service]);
    },
    onWoken: (service, scaled, scaledUp) => {
      reaper?.noteWoken(service, scaled);
      if (traefik.enabled && scaledUp.length > 0) void traefik.handoffs.releaseLater(scaledUp);
    },
  });
  // Not through the wake queue: a stats call waits up to 1 s for dockerd's next sample.
  const networkBytes = new NetworkBytesSource({ swarm: docker, registry, intervalMs: config.networkStatsIntervalMs, thresholdBytes: config.networkActivityBytes, log: log.child({ module: 'idle', source: 'network-bytes' }) });
  const sources: ActivitySource[] = [new OwnTrafficSource(traffic), networkBytes];
  if (config.traefikMetricsUrl) {
    sources.push(new TraefikMetricsSource({ url: config.traefikMetricsUrl, intervalMs: config.traefikMetricsIntervalMs, registry, log: log.child({ module: 'idle', source: 'traefik-metrics' }) }));
  }
  const idleReaper = new IdleReaper({ registry, swarm, coordinator, store, sources, metrics, guard, checkIntervalMs: config.idleCheckIntervalMs, log: log.child({ module: 'idle' }), rssOf: (app) => networkBytes.rssOf(app), handoff: traefik.enabled ? traefik.handoffs : undefined });
  reaper = idleReaper;
  const keepAwake = new KeepAwakeScheduler({ registry, coordinator, log: log.child({ module: 'keep-awake' }), onWoken: (service) => idleReaper.touch(service) });
  const savingsInputs = () => registry.all().map((e) => savingsInput(e, networkBytes.rssOf(e.policy.service)));
  metrics.readSavingsFrom(savingsInputs);
  registry.on('changed', (service, entry) => {
    if (!entry) {
      metrics.forget(service);
      traffic.forget(service);
    } else if (!coordinator.isWaking(service)) metrics.setState(service, (entry.replicas ?? 0) > 0 ? 'awake' : 'asleep');
  });

  const proxyApp = await buildProxyApp({ config, registry, coordinator, traffic, metrics, log, history, waitingPageDir: config.waitingPageDir, routeGuard: (entry, headers) => traefik.guard(entry, headers) });
  const adminApp = await buildAdminApp({
    registry,
    coordinator,
    traffic,
    metrics,
    log,
    settings: new AppSettings(swarm),
    reaper: idleReaper,
    history,
    dashboardMaxClients: config.dashboardMaxClients,
    savings: savingsInputs,
    auth: { tokens: config.adminTokens, store, sessionTtlMs: config.adminSessionTtlMs },
    traefik,
  });
  if (traefik.enabled) registerProviderRoute(adminApp, traefik);

  return {
    proxyApp,
    adminApp,
    registry,
    coordinator,
    reaper: idleReaper,
    metrics,
    async listen() {
      await registry.start();
      await traefik.start();
      idleReaper.start();
      keepAwake.start();
      await adminApp.listen({ host: config.host, port: config.adminPort });
      await proxyApp.listen({ host: config.host, port: config.port });
      log.info({ port: config.port, adminPort: config.adminPort, apps: registry.all().length, dockerHost: redactUrl(config.dockerHost), store: config.redisUrl ? 'redis' : 'memory', activitySources: sources.map((s) => s.name), traefikProvider: traefik.enabled ? 'on' : 'off' }, 'activator listening');
      log.info(
        { traefikProvider: traefik.enabled ? 'on' : 'off', activatorService: config.traefikActivatorService },
        traefik.enabled
          ? `Traefik provider on: serving ${PROVIDER_PATH} on the admin port; apps keep their routers while asleep`
          : 'Traefik provider off (no ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE): sleeping apps are reached through the catch-all; apps whose routers carry a middleware that may refuse, or match more than the Host, fail closed',
      );
    },
    async close() {
      await proxyApp.close();
      await adminApp.close();
      await keepAwake.stop();
      await idleReaper.stop();
      traefik.stop();
      await registry.stop();
      await store.close();
      await readiness.close();
    },
  };

}

/** The Redis password from ACTIVATOR_REDIS_PASSWORD_FILE (a Swarm secret), read once at start-up. */
function redisPassword(config: Readonly<Config>): { password?: string } {
  if (!config.redisPasswordFile) return {};
  try {
    return { password: readFileSync(config.redisPasswordFile, 'utf8').trim() };
  } catch (err) {
    throw new ConfigError('ACTIVATOR_REDIS_PASSWORD_FILE', `cannot read ${config.redisPasswordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
