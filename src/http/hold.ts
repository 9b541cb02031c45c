/**
 * HoldGate bounds how many requests may wait for one app's wake. A slot is freed when the wake
 * settles or the client leaves, whichever comes first.
 */
import { HoldLimitError } from '../errors.js';
import type { Metrics } from '../metrics.js';

export class HoldGate {
  private readonly held = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly metrics?: Metrics,
  ) {}

  /** Takes a slot or throws HoldLimitError; the returned release is idempotent. */
  acquire(app: string): () => void {
    const n = this.held.get(app) ?? 0;
    if (n >= this.limit) throw new HoldLimitError(app, this.limit);
    this.held.set(app, n + 1);
    this.metrics?.held.inc({ app });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(app) ?? 1) - 1;
      if (left <= 0) this.held.delete(app);
      else this.held.set(app, left);
      this.metrics?.held.dec({ app });
    };
  }
}
