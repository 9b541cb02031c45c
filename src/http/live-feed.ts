/**
 * The dashboard's live feed: server-sent events driven by domain events (the registry's service
 * changes, i.e. scales, label writes and timeouts; wakes starting and ending; activity), never by
 * a timer polling state. Changes are coalesced per app: a state change goes out within 50 ms,
 * activity alone at most once a second per app. Streams are bounded in number, a slow reader is
 * dropped, and every stream is cleaned up when its client leaves or the admin app closes.
 */
import type { ServerResponse } from 'node:http';
import type { AppEntry } from '../discovery/app-registry.js';
import { appViews, type AppViewDeps } from './app-view.js';

/** A client this far behind (bytes queued) is dropped: it reconnects and gets a fresh snapshot. */
const MAX_QUEUED_BYTES = 1 << 20;
const URGENT_MS = 50;
const ACTIVITY_MS = 1000;
/** A comment line this often keeps idle proxies from closing the stream. */
const HEARTBEAT_MS = 25_000;

export interface LiveFeedSources {
  registry: {
    all(): AppEntry[];
    byService(name: string): AppEntry | undefined;
    on(event: 'changed', listener: (service: string, entry: AppEntry | undefined) => void): unknown;
    off(event: 'changed', listener: (service: string, entry: AppEntry | undefined) => void): unknown;
  };
  history?: { on(event: 'changed', l: (service: string) => void): unknown; off(event: 'changed', l: (service: string) => void): unknown } | undefined;
  activity?: { onRecord(listener: (app: string, at: number) => void): () => void } | undefined;
}

export class TooManyStreamsError extends Error {
  override readonly name = 'TooManyStreamsError';
}

export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  /** Apps to send, and whether only their activity changed. */
  private readonly dirty = new Map<string, 'urgent' | 'activity'>();
  private readonly lastActivitySent = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushAt = Infinity;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly sources: LiveFeedSources,
    private readonly view: AppViewDeps,
    private readonly maxClients: number,
  ) {
    const onChanged = (service: string) => this.mark(service, 'urgent');
    sources.registry.on('changed', onChanged);
    this.unsubscribe.push(() => void sources.registry.off('changed', onChanged));
    if (sources.history) {
      const history = sources.history;
      history.on('changed', onChanged);
      this.unsubscribe.push(() => void history.off('changed', onChanged));
    }
    if (sources.activity) this.unsubscribe.push(sources.activity.onRecord((app) => this.mark(app, 'activity')));
  }

  get size(): number {
    return this.clients.size;
  }

  /** Starts a stream on `res` (headers, then a snapshot of every app); throws when at the bound. */
  open(res: ServerResponse): void {
    if (this.clients.size >= this.maxClients) throw new TooManyStreamsError(`${this.maxClients} live streams are open already`);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    this.clients.add(res);
    res.once('close', () => this.drop(res));
    const apps = appViews(this.sources.registry.all(), this.view);
    this.write(res, 'snapshot', { serverTime: new Date().toISOString(), apps });
    this.heartbeat ??= setInterval(() => this.broadcastRaw(': keep-alive\n\n'), HEARTBEAT_MS).unref();
  }

  /** Ends every stream (admin app closing). */
  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const res of [...this.clients]) res.end();
    this.clients.clear();
    this.stopTimers();
  }

  private drop(res: ServerResponse): void {
    this.clients.delete(res);
    if (this.clients.size === 0) {
      this.stopTimers();
      this.dirty.clear();
    }
  }

  private stopTimers(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushAt = Infinity;
  }

  private mark(service: string, kind: 'urgent' | 'activity'): void {
    if (this.clients.size === 0) return;
    if (this.dirty.get(service) !== 'urgent') this.dirty.set(service, kind);
    const now = Date.now();
    const due = kind === 'urgent' ? now + URGENT_MS : Math.max(now + URGENT_MS, (this.lastActivitySent.get(service) ?? 0) + ACTIVITY_MS);
    if (due >= this.flushAt) return;
    clearTimeout(this.flushTimer);
    this.flushAt = due;
    this.flushTimer = setTimeout(() => this.flush(), due - now);
  }

  private flush(): void {
    this.flushTimer = undefined;
    this.flushAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    const changed: AppEntry[] = [];
    for (const [service, kind] of [...this.dirty]) {
      const notBefore = (this.lastActivitySent.get(service) ?? 0) + ACTIVITY_MS;
      if (kind === 'activity' && now < notBefore) {
        next = Math.min(next, notBefore);
        continue;
      }
      this.dirty.delete(service);
      this.lastActivitySent.set(service, now);
      const entry = this.sources.registry.byService(service);
      if (entry) changed.push(entry);
      else {
        this.lastActivitySent.delete(service);
        this.broadcast('removed', { service });
      }
    }
    for (const view of appViews(changed, this.view)) this.broadcast('app', view);
    if (next < Infinity && this.clients.size > 0) {
      this.flushAt = next;
      this.flushTimer = setTimeout(() => this.flush(), next - now);
    }
  }

  private broadcast(event: string, data: unknown): void {
    this.broadcastRaw(frame(event, data));
  }

  private broadcastRaw(text: string): void {
    for (const res of [...this.clients]) this.send(res, text);
  }

  private write(res: ServerResponse, event: string, data: unknown): void {
    this.send(res, frame(event, data));
  }

  private send(res: ServerResponse, text: string): void {
    if (res.writableLength > MAX_QUEUED_BYTES) {
      res.destroy(); // 'close' drops it
      return;
    }
    res.write(text);
  }
}

/** One SSE event. JSON has no raw newlines, so one data line carries it. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
