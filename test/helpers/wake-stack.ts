/**
 * The activator's wake path in process, as src/activator.ts wires it: AppRegistry, ReadinessProbe
 * and WakeCoordinator over a SwarmClient stand-in (MemorySwarm or a test's own), and the proxy app
 * on top. Torn down with the test.
 */
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { AppRegistry } from '../../src/discovery/app-registry.js';
import { buildProxyApp, type HttpDeps } from '../../src/http/app.js';
import { OwnTraffic } from '../../src/idle/traffic.js';
import { Metrics } from '../../src/metrics.js';
import type { SwarmClient } from '../../src/swarm/swarm.js';
import { WakeCoordinator, type WakeCoordinatorOptions } from '../../src/wake/coordinator.js';
import { ReadinessProbe } from '../../src/wake/readiness.js';
import type { WakeHistory } from '../../src/wake/wake-history.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface WakeStackOptions {
  /** The registry's default wake timeout (an app's label overrides it). */
  wakeTimeoutMs?: number;
  probeIntervalMs?: number;
  retryBackoffMs?: number;
  history?: WakeHistory;
  /** For the registry and the coordinator; silent by default. */
  log?: Logger;
  hooks?: Pick<WakeCoordinatorOptions, 'onScaledUp' | 'onWoken'>;
}

export interface WakeStack {
  registry: AppRegistry;
  readiness: ReadinessProbe;
  metrics: Metrics;
  coordinator: WakeCoordinator;
}

/** The proxy app's config in unit tests; a test overrides what it is about. */
export const TEST_PROXY_CONFIG: HttpDeps['config'] = {
  maxBodyBytes: 1 << 20,
  maxHeldPerApp: 100,
  retryAfterSeconds: 5,
  internalPrefix: '/__activator',
  monitorUserAgents: undefined,
  monitorPaths: undefined,
  monitorStatus: 200,
};

const silent = pino({ level: 'silent' });

async function build(swarm: SwarmClient, opts: WakeStackOptions): Promise<WakeStack & { close: () => Promise<void> }> {
  const log = opts.log ?? silent;
  const registry = new AppRegistry({ swarm, defaults: { strategy: 'blocking', wakeTimeoutMs: opts.wakeTimeoutMs ?? 5000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: 'net' }, resyncIntervalMs: 60_000, log });
  await registry.start();
  const readiness = new ReadinessProbe(swarm, 500);
  const metrics = new Metrics({ defaultMetrics: false });
  const coordinator = new WakeCoordinator({
    registry,
    swarm,
    readiness,
    metrics,
    log,
    probeIntervalMs: opts.probeIntervalMs ?? 5,
    ...(opts.retryBackoffMs !== undefined ? { retryBackoffMs: opts.retryBackoffMs } : {}),
    ...(opts.history ? { history: opts.history } : {}),
    ...opts.hooks,
  });
  const close = async () => {
    await registry.stop();
    await readiness.close();
  };
  return { registry, readiness, metrics, coordinator, close };
}

/** Registry (started), probe and coordinator. */
export async function wakeStack(t: Teardown, swarm: SwarmClient, opts: WakeStackOptions = {}): Promise<WakeStack> {
  const { close, ...stack } = await build(swarm, opts);
  t.teardown(close);
  return stack;
}

export interface ProxyStackOptions extends WakeStackOptions {
  config?: Partial<HttpDeps['config']>;
  /** The proxy app's logger, when it differs from the wake path's. */
  appLog?: Logger;
}

/** wakeStack, plus the proxy app over it (built, not listening) and its traffic tracker. */
export async function proxyStack(t: Teardown, swarm: SwarmClient, opts: ProxyStackOptions = {}): Promise<WakeStack & { app: FastifyInstance; traffic: OwnTraffic }> {
  const { close, ...stack } = await build(swarm, opts);
  const traffic = new OwnTraffic(stack.metrics);
  const app = await buildProxyApp({
    config: { ...TEST_PROXY_CONFIG, ...opts.config },
    registry: stack.registry,
    coordinator: stack.coordinator,
    traffic,
    metrics: stack.metrics,
    log: opts.appLog ?? opts.log ?? silent,
  });
  t.teardown(async () => {
    await app.close();
    await close();
  });
  return { ...stack, app, traffic };
}

/** The app's entry in the registry, or a failed test. */
export function discovered(stack: Pick<WakeStack, 'registry'>, service: string) {
  const entry = stack.registry.byService(service);
  if (!entry) throw new Error(`${service} not discovered`);
  return entry;
}
