/**
 * One task list for every service whose tasks are asked for at once. Fifty apps woken together
 * each poll their tasks every probe interval; through the Docker queue (8 at a time) each of those
 * lists waited behind the others' (docs/performance.md, Monday morning). Here at most one list is
 * queued or running: every service asked for meanwhile joins the next one, a single Docker call
 * with one `service` filter per service, whose tasks are handed back per service.
 */
import type { TaskInfo } from './swarm.js';

/** A Swarm object ID (25 base-36 characters): the tasks' ServiceID matches it exactly, unlike a name. */
const SERVICE_ID = /^[0-9a-z]{25}$/;

interface Waiter {
  resolve: (tasks: TaskInfo[]) => void;
  reject: (err: unknown) => void;
}

export interface TaskListBatchOptions {
  /** One Docker call for several services (their tasks, each with its serviceId). */
  listMany: (serviceIds: string[]) => Promise<TaskInfo[]>;
  listOne: (serviceId: string) => Promise<TaskInfo[]>;
  /** Runs a Docker call in its turn (the queue); counted by the caller. */
  enqueue: <T>(fn: () => Promise<T>) => Promise<T>;
}

export class TaskListBatch {
  private pending = new Map<string, Waiter[]>();
  /** A list is queued or running; who asks now waits for the next one. */
  private busy = false;

  constructor(private readonly options: TaskListBatchOptions) {}

  list(serviceId: string): Promise<TaskInfo[]> {
    // A name (or an ID prefix) would not match the tasks' ServiceID: such lists go on their own.
    if (!SERVICE_ID.test(serviceId)) return this.options.enqueue(() => this.options.listOne(serviceId));
    return new Promise<TaskInfo[]>((resolve, reject) => {
      const waiters = this.pending.get(serviceId);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(serviceId, [{ resolve, reject }]);
      this.next();
    });
  }

  private next(): void {
    if (this.busy || this.pending.size === 0) return;
    this.busy = true;
    this.options
      .enqueue(async () => {
        // Taken when its turn comes, not when queued: whoever asked while it waited is in it.
        const batch = this.pending;
        this.pending = new Map();
        await this.fetch(batch);
      })
      .catch(() => undefined) // fetch settles every waiter itself
      .finally(() => {
        this.busy = false;
        this.next();
      });
  }

  private async fetch(batch: Map<string, Waiter[]>): Promise<void> {
    const ids = [...batch.keys()];
    if (ids.length === 1) {
      const [id] = ids as [string];
      await this.options.listOne(id).then(
        (tasks) => settle(batch.get(id), tasks),
        (err: unknown) => fail(batch.get(id), err),
      );
      return;
    }
    let tasks: TaskInfo[];
    try {
      tasks = await this.options.listMany(ids);
    } catch {
      // Docker refuses the whole list when one of the services is gone (404): each on its own,
      // in this same turn of the queue, so only that one gets the error.
      for (const id of ids) {
        await this.options.listOne(id).then(
          (own) => settle(batch.get(id), own),
          (err: unknown) => fail(batch.get(id), err),
        );
      }
      return;
    }
    const byService = new Map<string, TaskInfo[]>(ids.map((id) => [id, []]));
    for (const task of tasks) byService.get(task.serviceId)?.push(task);
    for (const [id, waiters] of batch) settle(waiters, byService.get(id) ?? []);
  }
}

function settle(waiters: Waiter[] | undefined, tasks: TaskInfo[]): void {
  // Each caller gets its own array: readiness and lost-task checks filter and sort them.
  for (const w of waiters ?? []) w.resolve([...tasks]);
}

function fail(waiters: Waiter[] | undefined, err: unknown): void {
  for (const w of waiters ?? []) w.reject(err);
}
