/**
 * HoldGate bounds what clients can make the activator hold:
 *   - requests waiting for a wake, per app and across all apps (a slot is freed when the wake
 *     settles or the client leaves, whichever comes first);
 *   - request body bytes buffered at once, across all requests.
 * Over a bound the client gets 503 with Retry-After, never an OOM.
 */
import { HoldLimitError, OverloadedError } from '../errors.js';
import type { Metrics } from '../metrics.js';

export interface HoldLimits {
  perApp: number;
  total: number;
  bodyBytes: number;
}

export class HoldGate {
  private readonly held = new Map<string, number>();
  private total = 0;
  private bodyBytes = 0;

  constructor(
    private readonly limits: HoldLimits,
    private readonly metrics?: Metrics,
  ) {}

  /** Takes a slot or throws (HoldLimitError for the app's bound, OverloadedError for the total); the returned release is idempotent. */
  acquire(app: string): () => void {
    const n = this.held.get(app) ?? 0;
    if (n >= this.limits.perApp) throw new HoldLimitError(app, this.limits.perApp);
    if (this.total >= this.limits.total) throw new OverloadedError(app, `${this.limits.total} requests are already waiting for wakes`);
    this.held.set(app, n + 1);
    this.total++;
    this.metrics?.held.inc({ app });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.held.get(app) ?? 1) - 1;
      if (left <= 0) this.held.delete(app);
      else this.held.set(app, left);
      this.metrics?.held.dec({ app });
    };
  }

  /** Counts `n` more buffered body bytes; false (nothing counted) when that would pass the bound. */
  reserveBody(n: number): boolean {
    if (this.bodyBytes + n > this.limits.bodyBytes) return false;
    this.bodyBytes += n;
    return true;
  }

  releaseBody(n: number): void {
    this.bodyBytes = Math.max(0, this.bodyBytes - n);
  }

  /** For tests and metrics: what is held right now. */
  usage(): { held: number; bodyBytes: number } {
    return { held: this.total, bodyBytes: this.bodyBytes };
  }
}
