/**
 * Last activity per app: kept locally (always fresh for this replica) and written through to the
 * Store so other replicas see it. Writes are coalesced per app: at most one in flight, the newest
 * value written next, so a busy app costs about one store round trip at a time, not one per request.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';

export class ActivityLog {
  private readonly local = new Map<string, number>();
  /** Which source recorded each app's latest local activity ("own-traffic", "ops API", …). */
  private readonly localSource = new Map<string, string>();
  private readonly listeners = new Set<(app: string, at: number) => void>();
  private readonly written = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private lastErrorLog = 0;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  record(app: string, at: number, source?: string): void {
    const current = this.local.get(app);
    if (current !== undefined && current >= at) return;
    this.local.set(app, at);
    if (source) this.localSource.set(app, source);
    else this.localSource.delete(app);
    if (!this.inFlight.has(app)) this.write(app);
    for (const listener of this.listeners) listener(app, at);
  }

  /** Called on every new local activity (the dashboard's live feed); returns the unsubscribe. */
  onRecord(listener: (app: string, at: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** This replica's latest activity and the source that saw it (no I/O). */
  localLatestWithSource(app: string): { at: number; source: string | undefined } | undefined {
    const at = this.local.get(app);
    return at === undefined ? undefined : { at, source: this.localSource.get(app) };
  }

  /** This replica's latest activity for the app (no I/O). */
  localLatest(app: string): number | undefined {
    return this.local.get(app);
  }

  /** The latest activity any replica recorded: max(local, store). Throws when the store fails. */
  async latest(app: string): Promise<number | undefined> {
    const shared = await this.store.lastActivity(app);
    const mine = this.local.get(app);
    if (shared === undefined) return mine;
    if (mine === undefined) return shared;
    return Math.max(shared, mine);
  }

  /** Drops apps that are no longer registered. */
  retain(apps: ReadonlySet<string>): void {
    for (const app of this.local.keys()) {
      if (!apps.has(app) && !this.inFlight.has(app)) {
        this.local.delete(app);
        this.localSource.delete(app);
        this.written.delete(app);
      }
    }
  }

  /** Waits for pending writes (shutdown, tests). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
  }

  private write(app: string): void {
    const at = this.local.get(app);
    if (at === undefined) return;
    const done = this.store
      .touch(app, at)
      .then(() => void this.written.set(app, Math.max(at, this.written.get(app) ?? 0)))
      .catch((err: unknown) => {
        if (Date.now() - this.lastErrorLog > 10_000) {
          this.lastErrorLog = Date.now();
          this.log.warn({ err, app }, 'recording activity in the store failed');
        }
      })
      .finally(() => {
        this.inFlight.delete(app);
        const latest = this.local.get(app);
        if (latest !== undefined && latest > (this.written.get(app) ?? 0) && latest > at) this.write(app);
      });
    this.inFlight.set(app, done);
  }
}
