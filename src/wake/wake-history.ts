/**
 * WakeHistory: the last few wakes of each app (bounded), and the wake in progress. The dashboard
 * shows them, the waiting page takes its "usually wakes in" from them, and every change is an
 * event the dashboard's live feed listens to. Per replica, in memory: a restart starts it afresh.
 */
import { EventEmitter } from 'node:events';

/** Wakes kept per app. */
export const WAKES_KEPT = 10;

export interface WakeRecord {
  /** Epoch ms the wake started. */
  at: number;
  /** How long it took (ready or failed). */
  ms: number;
  outcome: 'ready' | 'failed';
  /** Error code and message of a failed wake (SA_WAKE_TIMEOUT, SA_APP_FAILED, …). */
  code?: string;
  message?: string;
  /** What woke it: "request for shop.pr-42.example.com", "ops API", … */
  reason: string;
  /** True when the app was really asleep (scaled up, or not answering yet): a cold start. */
  cold: boolean;
}

export interface WakeInProgress {
  at: number;
  reason: string;
}

export interface WakeHistoryEvents {
  /** A wake of this app started or ended. */
  changed: [service: string];
}

export class WakeHistory extends EventEmitter<WakeHistoryEvents> {
  private readonly done = new Map<string, WakeRecord[]>();
  private readonly running = new Map<string, WakeInProgress>();

  constructor(private readonly kept = WAKES_KEPT) {
    super();
  }

  started(service: string, reason: string, at = Date.now()): void {
    this.running.set(service, { at, reason });
    this.emit('changed', service);
  }

  /** A ready app that was never asleep (endpoints found again after a restart) is no wake: not kept. */
  finished(service: string, result: Omit<WakeRecord, 'at' | 'reason'>): void {
    const run = this.running.get(service);
    this.running.delete(service);
    if (result.outcome === 'ready' && !result.cold) {
      this.emit('changed', service);
      return;
    }
    const list = this.done.get(service) ?? [];
    list.unshift({ at: run?.at ?? Date.now() - result.ms, reason: run?.reason ?? '', ...result });
    if (list.length > this.kept) list.length = this.kept;
    this.done.set(service, list);
    this.emit('changed', service);
  }

  /** The wake under way, if any. */
  inProgress(service: string): WakeInProgress | undefined {
    return this.running.get(service);
  }

  /** Newest first. */
  recent(service: string): readonly WakeRecord[] {
    return this.done.get(service) ?? [];
  }

  /**
   * The median duration of the app's recent cold wakes that succeeded: what a visitor can expect.
   * Undefined until there is one.
   */
  usualMs(service: string): number | undefined {
    const ms = this.recent(service)
      .filter((w) => w.outcome === 'ready' && w.cold)
      .map((w) => w.ms)
      .sort((a, b) => a - b);
    if (ms.length === 0) return undefined;
    const mid = Math.floor(ms.length / 2);
    const upper = ms[mid] ?? 0;
    return ms.length % 2 === 1 ? upper : Math.round(((ms[mid - 1] ?? upper) + upper) / 2);
  }

  /** A removed app. */
  forget(service: string): void {
    this.done.delete(service);
    this.running.delete(service);
  }
}
