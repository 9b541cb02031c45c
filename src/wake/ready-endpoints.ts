/**
 * ReadyEndpoints: the endpoints each app answered its probe on, and the round-robin over them
 * that the fast path takes (no Docker call). Filled by a wake; emptied when the app is scaled
 * down, or endpoint by endpoint when a task refuses a connection or is found lost.
 */
import type { Endpoint } from './readiness.js';

interface ReadySet {
  endpoints: Endpoint[];
  next: number;
}

export class ReadyEndpoints {
  private readonly byService = new Map<string, ReadySet>();

  /** The next endpoint, round-robin; undefined when the app must be (re)checked. */
  next(service: string): Endpoint | undefined {
    const set = this.byService.get(service);
    if (!set || set.endpoints.length === 0) return undefined;
    const ep = set.endpoints[set.next % set.endpoints.length];
    set.next = (set.next + 1) % set.endpoints.length;
    return ep;
  }

  set(service: string, endpoints: Endpoint[]): void {
    this.byService.set(service, { endpoints, next: 0 });
  }

  /** Forget all of an app's endpoints, or one (refused a connection, task lost). */
  forget(service: string, endpoint?: Endpoint): void {
    const set = this.byService.get(service);
    if (!set) return;
    if (endpoint) set.endpoints = set.endpoints.filter((e) => e.taskId !== endpoint.taskId);
    if (!endpoint || set.endpoints.length === 0) this.byService.delete(service);
  }
}
