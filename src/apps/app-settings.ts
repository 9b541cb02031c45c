/**
 * The settings ops change while the activator runs (admin API, dashboard): each is a label-only
 * spec update, so Swarm keeps the tasks running, and every activator replica sees the change
 * through the service event. HTTP routes call this; only this talks to the Swarm adapter.
 */
import { LABELS } from '../labels.js';
import type { SwarmClient } from '../swarm/swarm.js';

export class AppSettings {
  constructor(private readonly swarm: Pick<SwarmClient, 'updateServiceLabels'>) {}

  /** `duration` as validated by the caller; returns the service's new version. */
  async setIdleTimeout(service: string, duration: string): Promise<{ version: number }> {
    const updated = await this.swarm.updateServiceLabels(service, { [LABELS.idleTimeout]: duration });
    return { version: updated.version };
  }

  /** Keep-awake windows (e.g. "Mon-Fri 08:00-18:00"), or null to drop them. */
  async setKeepAwakeWindows(service: string, windows: string | null): Promise<void> {
    if (windows === null) await this.swarm.updateServiceLabels(service, {}, [LABELS.keepAwake]);
    else await this.swarm.updateServiceLabels(service, { [LABELS.keepAwake]: windows });
  }

  /** Never put to sleep before `iso`; null drops the hold. */
  async setKeepAwakeUntil(service: string, iso: string | null): Promise<void> {
    if (iso === null) await this.swarm.updateServiceLabels(service, {}, [LABELS.keepAwakeUntil]);
    else await this.swarm.updateServiceLabels(service, { [LABELS.keepAwakeUntil]: iso });
  }
}
