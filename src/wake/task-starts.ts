/**
 * Task containers seen starting on this engine (Docker's container start events), remembered for
 * a minute. A task Swarm still calls `starting` whose container start was heard runs, and its
 * address is up: it may be probed at once instead of after STARTING_SETTLE_MS (readiness.ts).
 */
const REMEMBER_MS = 60_000;
/** Bounds memory under a storm of starts; the oldest are dropped first. */
const MAX_REMEMBERED = 10_000;

export class TaskStarts {
  /** Task id → when its container start was heard; insertion order is time order. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  add(taskId: string): void {
    const now = this.now();
    this.seen.delete(taskId);
    this.seen.set(taskId, now);
    for (const [id, at] of this.seen) {
      if (now - at <= REMEMBER_MS && this.seen.size <= MAX_REMEMBERED) break;
      this.seen.delete(id);
    }
  }

  has(taskId: string): boolean {
    const at = this.seen.get(taskId);
    return at !== undefined && this.now() - at <= REMEMBER_MS;
  }
}
