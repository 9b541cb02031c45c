/**
 * PUT /api/apps/:service/keep-awake (operator): the dashboard's "keep awake until", and windows.
 *   {"until": "<ISO>"}   never put to sleep before then (label keep-awake.until); woken now if asleep
 *   {"until": null}      drops it
 *   {"window": "Mon-Fri 08:00-18:00" | "off"}   the keep-awake label, as `swarm-activator keep-awake`
 * Written through AppSettings (label-only spec updates: tasks keep running).
 */
import type { FastifyInstance } from 'fastify';
import { ActivatorError } from '../errors.js';
import { parseWindows } from '../idle/keep-awake.js';
import type { AdminDeps } from './admin.js';

/** The furthest "until" accepted: a forgotten hold should not pin an app for months. */
export const MAX_KEEP_AWAKE_UNTIL_MS = 31 * 86_400_000;

export function registerKeepAwakeRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.put<{ Params: { service: string }; Body: unknown }>('/api/apps/:service/keep-awake', async (request) => {
    const { service } = request.params;
    const entry = deps.registry.byService(service);
    if (!entry) throw new ActivatorError('SA_NOT_FOUND', `no app named "${service}" is managed by this activator`);
    const { settings } = deps;
    if (!settings) throw new ActivatorError('SA_NOT_CONFIGURED', 'this admin app has no Docker access');
    const body = (request.body ?? {}) as { until?: unknown; window?: unknown };
    const hasUntil = Object.hasOwn(body, 'until');
    const hasWindow = Object.hasOwn(body, 'window');
    if (hasUntil === hasWindow) throw new ActivatorError('SA_BAD_REQUEST', 'send either {"until": "<ISO time>" | null} or {"window": "Mon-Fri 08:00-18:00" | "off"}');

    if (hasWindow) {
      const window = typeof body.window === 'string' ? body.window.trim() : '';
      if (window === '') throw new ActivatorError('SA_BAD_REQUEST', 'window: expected e.g. "Mon-Fri 08:00-18:00", or "off"');
      if (window.toLowerCase() === 'off') {
        await settings.setKeepAwakeWindows(service, null);
      } else {
        try {
          parseWindows(window);
        } catch (err) {
          throw new ActivatorError('SA_BAD_REQUEST', `window: ${(err as Error).message}`);
        }
        await settings.setKeepAwakeWindows(service, window);
      }
      request.log.info({ app: service, window }, 'keep-awake window changed');
      return { service, window: window.toLowerCase() === 'off' ? null : window };
    }

    if (body.until === null) {
      await settings.setKeepAwakeUntil(service, null);
      request.log.info({ app: service }, 'keep-awake hold dropped');
      return { service, until: null };
    }
    const until = typeof body.until === 'string' ? Date.parse(body.until) : Number.NaN;
    if (!Number.isFinite(until)) throw new ActivatorError('SA_BAD_REQUEST', 'until: expected an ISO date and time, e.g. "2026-12-01T18:00:00Z"');
    const now = Date.now();
    if (until <= now) throw new ActivatorError('SA_BAD_REQUEST', 'until: must be in the future');
    if (until - now > MAX_KEEP_AWAKE_UNTIL_MS) throw new ActivatorError('SA_BAD_REQUEST', 'until: at most 31 days ahead');
    const iso = new Date(until).toISOString();
    await settings.setKeepAwakeUntil(service, iso);
    request.log.info({ app: service, until: iso }, 'kept awake until');
    // Kept awake means awake: wake it now (in the background; the live feed shows the wake).
    if ((entry.replicas ?? 0) <= entry.policy.idleReplicas) {
      deps.coordinator.wakeNow(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000), 'ops API: keep awake').then(
        () => deps.reaper?.touch(service),
        (err: unknown) => request.log.warn({ err, app: service }, 'wake for keep-awake failed'),
      );
    }
    return { service, until: iso };
  });
}
