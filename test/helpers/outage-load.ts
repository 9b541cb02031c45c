/**
 * Bounded load while something the activator depends on is cut off: one round of requests every
 * `everyMs` until `forMs` passed (at most `maxRounds`), each request with its own time limit, so
 * "no request unanswered" is measured rather than assumed.
 */
import { send } from './http.js';

export interface LoadTarget {
  name: string;
  url: string;
  host: string;
}

export interface LoadResult {
  sent: number;
  /** Per target: status (or 'no answer') → count. */
  byTarget: Map<string, Map<string | number, number>>;
  /** Answers that were 503 without Retry-After, or without an X-Activator-Error code. */
  unclear: number;
  slowestMs: number;
}

export async function loadDuring(targets: LoadTarget[], opts: { forMs: number; everyMs: number; maxRounds: number; timeoutMs: number }): Promise<LoadResult> {
  const result: LoadResult = { sent: 0, byTarget: new Map(targets.map((x) => [x.name, new Map<string | number, number>()])), unclear: 0, slowestMs: 0 };
  const until = Date.now() + opts.forMs;
  const pending: Array<Promise<void>> = [];
  for (let round = 0; round < opts.maxRounds && Date.now() < until; round++) {
    for (const target of targets) {
      result.sent++;
      pending.push(
        send(`${target.url}/outage?round=${round}`, { headers: { host: target.host, accept: 'application/json' }, timeoutMs: opts.timeoutMs }).then(
          (res) => {
            result.slowestMs = Math.max(result.slowestMs, res.ms);
            if (res.status === 503 && (!res.header('retry-after') || !res.header('x-activator-error'))) result.unclear++;
            const key = res.status === 200 ? 200 : `${res.status} ${res.header('x-activator-error') ?? ''}`.trim();
            const m = result.byTarget.get(target.name) as Map<string | number, number>;
            m.set(key, (m.get(key) ?? 0) + 1);
          },
          () => {
            const m = result.byTarget.get(target.name) as Map<string | number, number>;
            m.set('no answer', (m.get('no answer') ?? 0) + 1);
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, opts.everyMs));
  }
  await Promise.all(pending);
  return result;
}

export function describeLoad(r: LoadResult): string {
  return [...r.byTarget].map(([name, m]) => `${name}: ${[...m].map(([k, n]) => `${n} × ${k}`).join(', ')}`).join('; ');
}
