/**
 * The activator's real HTTP stack (buildProxyApp: its fastify app, hooks, error handler and
 * reply-from proxy) on loopback, for the hot-path bench. One app, already known ready, whose single
 * "task" is the origin at 127.0.0.1:ORIGIN_PORT. Discovery and the seeding wake go through the real
 * AppRegistry and WakeCoordinator over a small fake SwarmClient; the fast path makes no Docker call
 * (the fake counts calls and the count is printed on SIGTERM to prove it).
 *
 * Env: PORT, ORIGIN_PORT, BENCH_HOST (the app's Host), ACTIVATOR_LOG_LEVEL (default info).
 * Logs go to stdout as in production (the bench sends them to a file).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { AppRegistry } from '../../src/discovery/app-registry.js';
import { buildProxyApp } from '../../src/http/app.js';
import { OwnTraffic } from '../../src/idle/traffic.js';
import { LABELS } from '../../src/labels.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { createQueuedSwarm } from '../../src/swarm/queued-swarm.js';
import type { ServiceInfo, SwarmClient, TaskInfo } from '../../src/swarm/swarm.js';
import { WakeCoordinator } from '../../src/wake/coordinator.js';
import { ReadinessProbe } from '../../src/wake/readiness.js';

const port = Number(process.env.PORT);
const originPort = Number(process.env.ORIGIN_PORT);
const host = process.env.BENCH_HOST ?? 'bench.local';

const service: ServiceInfo = {
  id: 'benchsvc0000000000000000',
  name: 'bench-app',
  version: 1,
  labels: { [LABELS.enable]: 'true', [LABELS.hosts]: host, [LABELS.port]: String(originPort) },
  replicas: 1,
  updatedAt: new Date().toISOString(),
  templateKey: 'bench',
};
const task: TaskInfo = {
  id: 'benchtask000000000000000',
  serviceId: service.id,
  nodeId: 'node',
  state: 'running',
  desiredState: 'running',
  error: undefined,
  message: 'started',
  exitCode: undefined,
  containerId: undefined,
  createdAt: service.updatedAt,
  addresses: [{ networkId: 'benchnet', networkName: 'bench', ip: '127.0.0.1' }],
};

let dockerCalls = 0;
const fakeSwarm: SwarmClient = {
  ping: async () => void dockerCalls++,
  listServices: async () => (dockerCalls++, [service]),
  inspectService: async () => (dockerCalls++, service),
  scaleService: async () => (dockerCalls++, { changed: false, version: service.version, previousReplicas: 1 }),
  updateServiceLabels: async () => {
    throw new Error('not in the bench');
  },
  listTasks: async () => (dockerCalls++, [task]),
  watchServices: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
  containerNetworkBytes: async () => null,
};

// The activator refuses to start without an admin token (issue 12); the bench's proxy has no admin port.
const tokenFile = process.env.ACTIVATOR_ADMIN_TOKEN_FILE ?? join(mkdtempSync(join(tmpdir(), 'sa-bench-')), 'admin-token');
if (process.env.ACTIVATOR_ADMIN_TOKEN_FILE === undefined) writeFileSync(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
const config = loadConfig({ ...process.env, ACTIVATOR_ADMIN_TOKEN_FILE: tokenFile, ACTIVATOR_LOG_LEVEL: process.env.ACTIVATOR_LOG_LEVEL ?? 'info' });
const log = createLogger(config.logLevel);
const metrics = new Metrics();
const swarm = createQueuedSwarm(fakeSwarm, config.dockerConcurrency, metrics);
const registry = new AppRegistry({
  swarm,
  defaults: { strategy: config.strategy, wakeTimeoutMs: config.wakeTimeoutMs, idleTimeoutMs: config.idleTimeoutMs, minAwakeMs: config.minAwakeMs, network: undefined },
  selector: undefined,
  resyncIntervalMs: 3_600_000,
  log: log.child({ module: 'discovery' }),
});
const readiness = new ReadinessProbe(swarm, config.probeTimeoutMs);
const coordinator = new WakeCoordinator({ registry, swarm, readiness, metrics, log: log.child({ module: 'wake' }), probeIntervalMs: config.probeIntervalMs });
const traffic = new OwnTraffic(metrics);

await registry.start();
const entry = registry.byHost(host);
if (!entry) throw new Error(`bench app for ${host} not discovered`);
// Seeds the ready cache the way a real wake does (probe of the task address answered).
await coordinator.ensureReady(entry, AbortSignal.timeout(10_000), 'bench seed');
const app = await buildProxyApp({ config, registry, coordinator, traffic, metrics, log });
await app.listen({ host: '127.0.0.1', port });
const callsAtListen = dockerCalls;

const stop = async () => {
  process.stderr.write(`activator-proxy: docker calls after listen: ${dockerCalls - callsAtListen}\n`);
  await app.close();
  await registry.stop();
  await readiness.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
