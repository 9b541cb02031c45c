/** Every Prometheus metric the activator exports, on one registry (served at /metrics on the admin port). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ERROR_CODES } from './errors.js';
import { appSavings, type AppSavings, type SavingsInput } from './savings/savings.js';

export type AppState = 'asleep' | 'waking' | 'awake';
const STATES: AppState[] = ['asleep', 'waking', 'awake'];

export class Metrics {
  readonly registry = new Registry();
  readonly wakes = new Counter({ name: 'activator_wakes_total', help: 'Scale-ups from idle done by the activator', labelNames: ['app'], registers: [this.registry] });
  readonly wakeDuration = new Histogram({
    name: 'activator_wake_duration_seconds',
    help: 'From the first held request to the app answering its readiness probe',
    labelNames: ['app'],
    buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120],
    registers: [this.registry],
  });
  readonly wakeFailures = new Counter({ name: 'activator_wake_failures_total', help: 'Wakes that failed, by reason', labelNames: ['app', 'reason'], registers: [this.registry] });
  readonly held = new Gauge({ name: 'activator_held_requests', help: 'Requests waiting for an app to wake', labelNames: ['app'], registers: [this.registry] });
  private inFlightSource: (() => Iterable<[string, number]>) | undefined;
  /** Read at scrape time (readInFlightFrom), not written per request (hot-path CPU: docs/performance.md). */
  readonly inFlight: Gauge<'app'> = new Gauge({ name: 'activator_in_flight', help: 'Requests and connections open through the activator', labelNames: ['app'], registers: [this.registry], collect: () => this.collectInFlight() });
  readonly state = new Gauge({ name: 'activator_app_state', help: '1 for the state each app is in (asleep, waking, awake)', labelNames: ['app', 'state'], registers: [this.registry] });
  readonly idleScaleDowns = new Counter({ name: 'activator_idle_scale_downs_total', help: 'Scale-downs of idle apps', labelNames: ['app'], registers: [this.registry] });
  readonly secondsSinceActivity = new Gauge({ name: 'activator_seconds_since_last_activity', help: 'Seconds since the last activity seen for an app', labelNames: ['app'], registers: [this.registry] });
  readonly dockerCalls = new Counter({ name: 'activator_docker_api_calls_total', help: 'Docker API calls made (through the bounded queue)', labelNames: ['op'], registers: [this.registry] });
  readonly monitorRequests = new Counter({ name: 'activator_monitor_requests_total', help: 'Uptime-monitor requests answered by the activator (never a wake, never activity)', labelNames: ['app'], registers: [this.registry] });
  private savingsSource: (() => SavingsInput[]) | undefined;
  private savingsSnapshot: { at: number; apps: AppSavings[] } | undefined;
  /** What sleeping saved, computed at scrape time from the apps' savings labels (all time). */
  readonly asleepSeconds: Gauge<'app' | 'env'> = new Gauge({ name: 'activator_asleep_seconds', help: 'Seconds each app has spent asleep, all time (savings labels plus the current sleep)', labelNames: ['app', 'env'], registers: [this.registry], collect: () => this.collectSavings() });
  readonly savedGiBHours: Gauge<'app' | 'env'> = new Gauge({ name: 'activator_saved_memory_gib_hours', help: 'Memory freed by sleeping: GiB × hours asleep × tasks freed, all time (apps whose memory is known)', labelNames: ['app', 'env'], registers: [this.registry], collect: () => this.collectSavings() });
  readonly appMemory: Gauge<'app' | 'source'> = new Gauge({ name: 'activator_app_memory_bytes', help: 'Memory of one task of the app used for the savings, by source: reservation, limit or rss (measured)', labelNames: ['app', 'source'], registers: [this.registry], collect: () => this.collectSavings() });
  readonly unknownHosts = new Counter({ name: 'activator_unknown_host_requests_total', help: 'Requests for hosts no app claims', registers: [this.registry] });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  setState(app: string, state: AppState): void {
    for (const s of STATES) this.state.set({ app, state: s }, s === state ? 1 : 0);
  }

  /** Where activator_in_flight comes from: per-app open counts, read at each scrape. */
  readInFlightFrom(source: () => Iterable<[string, number]>): void {
    this.inFlightSource = source;
  }

  private collectInFlight(): void {
    if (!this.inFlightSource) return;
    this.inFlight.reset();
    for (const [app, open] of this.inFlightSource()) this.inFlight.set({ app }, open);
  }

  /** Where the savings gauges come from: the registry's apps, read at each scrape. */
  readSavingsFrom(source: () => SavingsInput[]): void {
    this.savingsSource = source;
  }

  private collectSavings(): void {
    if (!this.savingsSource) return;
    const now = Date.now();
    // One computation per scrape for the three gauges.
    if (!this.savingsSnapshot || now - this.savingsSnapshot.at > 500) {
      this.savingsSnapshot = { at: now, apps: this.savingsSource().map((i) => appSavings(i, { to: now })) };
    }
    this.asleepSeconds.reset();
    this.savedGiBHours.reset();
    this.appMemory.reset();
    for (const a of this.savingsSnapshot.apps) {
      this.asleepSeconds.set({ app: a.service, env: a.env }, a.asleepSeconds);
      if (a.savedGiBHours !== null) this.savedGiBHours.set({ app: a.service, env: a.env }, a.savedGiBHours);
      if (a.memoryPerTaskBytes !== null) this.appMemory.set({ app: a.service, source: a.memorySource }, a.memoryPerTaskBytes);
    }
  }

  /** A removed app: drop every series that names it (preview environments come and go). */
  forget(app: string): void {
    for (const metric of [this.held, this.inFlight, this.secondsSinceActivity, this.wakes, this.wakeDuration, this.idleScaleDowns, this.monitorRequests]) metric.remove({ app });
    for (const s of STATES) this.state.remove({ app, state: s });
    for (const reason of Object.keys(ERROR_CODES)) this.wakeFailures.remove({ app, reason });
  }
}
