/**
 * Lost tasks: a request the app is slow to answer may be waiting on a task that is gone (its node
 * lost, the task shut down or replaced). A lost node never answers or resets, so without this such
 * a request waits for TCP to give up (many minutes).
 *
 *   SlowRequests   one timer for all requests written to the app and not answered yet; each
 *                  period it asks about the ones that were already waiting at the previous one
 *   LostTaskCheck  the question: is the task behind this endpoint gone? (one Docker task list
 *                  per app per second at most, shared by all of the app's slow requests)
 */
import type { AppEntry } from '../discovery/app-registry.js';
import type { SwarmClient, TaskInfo } from '../swarm/swarm.js';
import type { ReadyEndpoints } from './ready-endpoints.js';
import { taskMayServe, type Endpoint } from './readiness.js';

/** How long one task list of an app answers every lost-task question about it. */
const TASK_LIST_REUSE_MS = 1000;

export class LostTaskCheck {
  /** One task list per app at a time, shared by every slow request of the app. */
  private readonly taskLists = new Map<string, { at: number; tasks: Promise<TaskInfo[]> }>();

  constructor(
    private readonly swarm: Pick<SwarmClient, 'listTasks'>,
    private readonly endpoints: ReadyEndpoints,
  ) {}

  /** Is the task behind this endpoint gone? Then the endpoint is forgotten too. */
  async isLost(entry: AppEntry, endpoint: Endpoint): Promise<boolean> {
    const service = entry.policy.service;
    let list = this.taskLists.get(service);
    if (!list || Date.now() - list.at > TASK_LIST_REUSE_MS) {
      list = { at: Date.now(), tasks: this.swarm.listTasks(entry.policy.serviceId) };
      this.taskLists.set(service, list);
      list.tasks.catch(() => this.taskLists.delete(service));
    }
    const task = (await list.tasks).find((t) => t.id === endpoint.taskId);
    // No TaskStarts here: a request is asked about only after waiting a whole period (2 s), by
    // which time a starting task that served is past the settle time anyway.
    const lost = !task || !taskMayServe(task, entry.policy.readyWhen);
    if (lost) this.endpoints.forget(service, endpoint);
    return lost;
  }

  /** A removed app. */
  forget(service: string): void {
    this.taskLists.delete(service);
  }
}

/** A request SlowRequests watches: asked (checkSlow) once it has waited a whole period. */
export interface SlowRequest {
  /** SlowRequests' period when this request started waiting for the app (set by add). */
  waitingSince: number;
  checkSlow(): void;
}

/**
 * Requests written to the app and not answered yet. One timer for all of them, not one per
 * request (a timer each showed in the hot path's profile: docs/performance.md): each period, a
 * request that was already waiting at the previous one is checked.
 */
export class SlowRequests<T extends SlowRequest> {
  private readonly waiting = new Set<T>();
  private timer: NodeJS.Timeout | undefined;
  private period = 0;

  constructor(private readonly everyMs: number) {}

  add(request: T): void {
    request.waitingSince = this.period;
    this.waiting.add(request);
    this.timer ??= setInterval(() => this.sweep(), this.everyMs).unref();
  }

  delete(request: T): void {
    this.waiting.delete(request);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    if (this.waiting.size === 0) return this.stop();
    for (const request of this.waiting) if (request.waitingSince < this.period) request.checkSlow();
    this.period++;
  }
}
