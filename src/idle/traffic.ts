/**
 * The activator's own traffic as an activity signal: a request counts from start to end, a
 * WebSocket for as long as it is open. Open work blocks idle scale-down.
 */
import type { Metrics } from '../metrics.js';

export interface TrafficTracker {
  /** Marks work as open for an app; the returned function closes it (idempotent). */
  begin(app: string): () => void;
  open(app: string): number;
  lastActivity(app: string): number | undefined;
}

export class OwnTraffic implements TrafficTracker {
  private readonly openCount = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly listeners = new Set<(app: string, at: number) => void>();

  constructor(metrics?: Metrics) {
    // Apps keep their entry at 0 once seen (until forget), so the gauge shows 0, not nothing.
    metrics?.readInFlightFrom(() => this.openCount.entries());
  }

  onActivity(listener: (app: string, at: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  begin(app: string): () => void {
    this.openCount.set(app, (this.openCount.get(app) ?? 0) + 1);
    this.mark(app);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      this.openCount.set(app, Math.max(0, (this.openCount.get(app) ?? 1) - 1));
      this.mark(app);
    };
  }

  open(app: string): number {
    return this.openCount.get(app) ?? 0;
  }

  /** A removed app (its in-flight series goes with Metrics.forget). */
  forget(app: string): void {
    if (!this.openCount.get(app)) this.openCount.delete(app);
    this.last.delete(app);
  }

  lastActivity(app: string): number | undefined {
    return this.last.get(app);
  }

  private mark(app: string): void {
    const now = Date.now();
    this.last.set(app, now);
    for (const listener of this.listeners) listener(app, now);
  }
}
