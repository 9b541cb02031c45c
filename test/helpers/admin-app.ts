/** The real admin app (auth hook included) over the hand-written fakes of test/helpers/idle-fakes.ts. */
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { AppRegistry } from '../../src/discovery/app-registry.js';
import { buildAdminApp, type AdminDeps } from '../../src/http/admin.js';
import { OwnTraffic } from '../../src/idle/traffic.js';
import { Metrics } from '../../src/metrics.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { WakeCoordinator } from '../../src/wake/coordinator.js';
import { adminTokens } from './admin-tokens.js';
import type { FakeRegistry } from './idle-fakes.js';

/** A coordinator with no wake under way and no failure on record; an ops wake is only noted ("app:reason"). */
export function quietCoordinator(woken: string[] = []): Pick<WakeCoordinator, 'isWaking' | 'failureOf' | 'endpointFor' | 'wakeNow'> {
  return {
    isWaking: () => false,
    failureOf: () => undefined,
    endpointFor: () => undefined,
    wakeNow: async (e, _signal, reason) => void woken.push(`${e.policy.service}:${reason}`),
  };
}

/** buildAdminApp over a FakeRegistry and quietCoordinator, with an operator and a read-only token; closed with the test. */
export async function fakeAdminApp(
  t: { teardown(fn: () => unknown): void },
  opts: { registry: FakeRegistry; tokens: { operate: string; read: string }; woken?: string[] } & Partial<Omit<AdminDeps, 'registry' | 'auth'>>,
): Promise<FastifyInstance> {
  const { registry, tokens, woken, ...deps } = opts;
  const app = await buildAdminApp({
    registry: registry as unknown as AppRegistry,
    coordinator: quietCoordinator(woken) as WakeCoordinator,
    traffic: new OwnTraffic(),
    metrics: new Metrics({ defaultMetrics: false }),
    log: pino({ level: 'silent' }),
    auth: { tokens: adminTokens(tokens), store: new MemoryStore(), sessionTtlMs: 3_600_000 },
    ...deps,
  });
  t.teardown(() => app.close());
  return app;
}
