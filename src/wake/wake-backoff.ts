/**
 * WakeBackoff: the last failed wake of each app, and how long it holds further wakes back. After a
 * task error or a timeout, the app's requests get that failure at once (doubling per failure in a
 * row) instead of another scale-up, crash and scale-back each.
 */
import type { Logger } from 'pino';
import type { AppEntry } from '../discovery/app-registry.js';
import { WakeBackoffError, type ActivatorError } from '../errors.js';

/** Longest wait between wakes of an app whose wakes keep failing (unless the base is longer). */
const MAX_RETRY_BACKOFF_MS = 5 * 60_000;

/** Only the app's own failures hold wakes back; Docker being down is retried by the next request. */
const BACKOFF_CODES = new Set(['SA_APP_FAILED', 'SA_WAKE_TIMEOUT']);

/** The last failed wake of an app, while it holds further wakes back. */
export interface WakeFailure {
  error: ActivatorError;
  at: number;
  /** Epoch ms from which a request may start a new wake. */
  retryAt: number;
  /** Failed wakes in a row. */
  streak: number;
  /** The task template that failed: a redeploy (new image, env, …) ends the backoff at once. */
  templateKey: string;
}

export class WakeBackoff {
  private readonly failures = new Map<string, WakeFailure>();

  /** `baseMs`: the first backoff; 0 means none. */
  constructor(
    private readonly baseMs: number,
    private readonly log: Logger,
  ) {}

  /** The failed wake holding this app's wakes back, if any. */
  failureOf(service: string): WakeFailure | undefined {
    return this.failures.get(service);
  }

  /** Throws WakeBackoffError while the app's last failure holds a new wake back. */
  throwIfBackingOff(entry: AppEntry): void {
    const service = entry.policy.service;
    const failure = this.failures.get(service);
    if (!failure) return;
    const now = Date.now();
    // Redeployed, or scaled up by someone else (ops, another replica): worth a fresh look now.
    const atRest = (entry.replicas ?? 0) <= entry.policy.idleReplicas;
    if (failure.templateKey !== entry.templateKey || !atRest || now >= failure.retryAt) return;
    throw new WakeBackoffError(service, failure.error, now - failure.at, failure.retryAt - now);
  }

  noteFailure(entry: AppEntry, error: ActivatorError): void {
    const base = this.baseMs;
    if (base <= 0 || !BACKOFF_CODES.has(error.code)) return;
    const service = entry.policy.service;
    const previous = this.failures.get(service);
    const streak = previous && previous.templateKey === entry.templateKey ? previous.streak + 1 : 1;
    const backoff = Math.min(base * 2 ** (streak - 1), Math.max(base, MAX_RETRY_BACKOFF_MS));
    const at = Date.now();
    this.failures.set(service, { error, at, retryAt: at + backoff, streak, templateKey: entry.templateKey });
    this.log.warn({ app: service, code: error.code, streak, backoffMs: backoff }, `wakes of ${service} held back for ${Math.round(backoff / 1000)} s after ${streak} failed wake(s) in a row`);
  }

  /** The app woke, or is gone: nothing holds its next wake back. */
  clear(service: string): void {
    this.failures.delete(service);
  }
}
