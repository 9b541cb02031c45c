/**
 * Singleflight: one run per key however many callers ask for it (one wake per app), detached from
 * any one caller; a caller that leaves early (client gone) drops out without cancelling the run.
 */
export class Singleflight<T> {
  private readonly running = new Map<string, Promise<T>>();

  has(key: string): boolean {
    return this.running.has(key);
  }

  /** Joins the run under way for `key`, or starts one with `start` (whose throw reaches the caller). */
  run(key: string, start: () => Promise<T>): Promise<T> {
    let run = this.running.get(key);
    if (!run) {
      run = start().finally(() => this.running.delete(key));
      this.running.set(key, run);
    }
    return run;
  }
}

/** Waits for a shared promise, but lets one waiter leave early (client gone) without cancelling it. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
