/** Composition root: config → adapters → apps → listen; graceful close on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from './config.js';
import { AppRegistry } from './discovery/app-registry.js';
import { buildAdminApp } from './http/admin.js';
import { buildProxyApp } from './http/app.js';
import { OwnTraffic } from './idle/traffic.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { DockerodeSwarm } from './swarm/dockerode-swarm.js';
import { createQueuedSwarm } from './swarm/queued-swarm.js';
import { WakeCoordinator } from './wake/coordinator.js';
import { ReadinessProbe } from './wake/readiness.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger('info').fatal({ key: err.key }, `invalid configuration: ${err.message}`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const metrics = new Metrics();
  const swarm = createQueuedSwarm(new DockerodeSwarm({ dockerHost: config.dockerHost, log: log.child({ module: 'swarm' }) }), config.dockerConcurrency, metrics);
  const registry = new AppRegistry({
    swarm,
    defaults: {
      strategy: config.strategy,
      wakeTimeoutMs: config.wakeTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      minAwakeMs: config.minAwakeMs,
      network: config.defaultNetwork,
    },
    selector: config.selector,
    resyncIntervalMs: config.resyncIntervalMs,
    log: log.child({ module: 'discovery' }),
  });
  const readiness = new ReadinessProbe(swarm, config.probeTimeoutMs);
  const traffic = new OwnTraffic(metrics);
  const coordinator = new WakeCoordinator({ registry, swarm, readiness, metrics, log: log.child({ module: 'wake' }), probeIntervalMs: config.probeIntervalMs });
  registry.on('changed', (service, entry) => {
    if (!entry) metrics.forget(service);
    else if (!coordinator.isWaking(service)) metrics.setState(service, (entry.replicas ?? 0) > 0 ? 'awake' : 'asleep');
  });

  const proxyApp = await buildProxyApp({ config, registry, coordinator, traffic, metrics, log });
  const adminApp = await buildAdminApp({ registry, coordinator, traffic, metrics, log });

  await registry.start();
  await adminApp.listen({ host: config.host, port: config.adminPort });
  await proxyApp.listen({ host: config.host, port: config.port });
  log.info({ port: config.port, adminPort: config.adminPort, apps: registry.all().length, dockerHost: config.dockerHost }, 'activator listening');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    await proxyApp.close();
    await adminApp.close();
    await registry.stop();
    await readiness.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  createLogger('info').fatal({ err }, 'activator failed to start');
  process.exit(1);
});
