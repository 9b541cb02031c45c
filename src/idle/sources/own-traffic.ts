/**
 * The activator's own traffic: a request counts when it starts and when it ends; a WebSocket or
 * SSE stream when it opens and when it closes. While any is open, open() > 0 and the reaper
 * never scales the app down.
 */
import type { OwnTraffic } from '../traffic.js';
import type { ActivityListener, ActivitySource } from '../activity-source.js';

export class OwnTrafficSource implements ActivitySource {
  readonly name = 'own-traffic';
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly traffic: Pick<OwnTraffic, 'onActivity' | 'open'>) {}

  start(onActivity: ActivityListener): void {
    this.unsubscribe?.();
    const off = this.traffic.onActivity(onActivity);
    this.unsubscribe = () => void off();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  open(app: string): number {
    return this.traffic.open(app);
  }
}
