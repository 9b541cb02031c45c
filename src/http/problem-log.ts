/**
 * Which log level a problem answer gets, so that a flood of requests is never a flood of lines:
 *   - server-side failures (5xx): one error line per app and code per window, the rest at debug;
 *     the next line that is written says how many were held back;
 *   - unknown hosts (scanners, bots): one info line per host per window, at most `maxKeys` hosts a
 *     window, the rest at debug (activator_unknown_host_requests_total counts every one);
 *   - other client errors: info.
 * Plain requests and upgrade (WebSocket) requests share one ProblemLog.
 */
import type { Logger } from 'pino';
import type { HttpProblem } from './error-page.js';

export interface ProblemLogOptions {
  /** Window for server-side failures, per app and code. */
  errorWindowMs?: number;
  /** Window for unknown hosts, per host. */
  unknownHostWindowMs?: number;
  /** Distinct keys remembered per window (bounded memory under a flood of random Hosts). */
  maxKeys?: number;
}

/** Keys seen in the current window; bounded, and reset wholesale when the window ends. */
class Window {
  private seen = new Set<string>();
  /** Lines held back per key since its last written line (keys are app × code: bounded by the apps). */
  readonly carry = new Map<string, number>();
  private start = Date.now();

  constructor(
    private readonly ms: number,
    private readonly maxKeys: number,
  ) {}

  /** 'first' the first time a key is seen this window; 'seen' after that; 'full' when no more keys fit. */
  check(key: string): 'first' | 'seen' | 'full' {
    const now = Date.now();
    if (now - this.start > this.ms) {
      this.seen = new Set();
      this.start = now;
    }
    if (this.seen.has(key)) return 'seen';
    if (this.seen.size >= this.maxKeys) return 'full';
    this.seen.add(key);
    return 'first';
  }
}

export class ProblemLog {
  private readonly errors: Window;
  private readonly unknownHosts: Window;

  constructor(options: ProblemLogOptions = {}) {
    const maxKeys = options.maxKeys ?? 100;
    this.errors = new Window(options.errorWindowMs ?? 10_000, maxKeys * 10);
    this.unknownHosts = new Window(options.unknownHostWindowMs ?? 60_000, maxKeys);
  }

  /** Writes the problem's line at the level the limits allow. */
  write(log: Logger, problem: HttpProblem, fields: Record<string, unknown>): void {
    const line = { ...fields, code: problem.code, status: problem.status, app: problem.app, ...(problem.detail ? { detail: problem.detail } : {}) };
    if (problem.status >= 500) {
      const key = `${problem.app ?? ''}\u0000${problem.code}`;
      const seen = this.errors.check(key);
      if (seen === 'first') {
        const held = this.errors.carry.get(key);
        this.errors.carry.delete(key);
        return log.error(held ? { ...line, heldBack: held } : line, held ? `${problem.message} (${held} more like it held back at debug)` : problem.message);
      }
      if (seen === 'seen') this.errors.carry.set(key, (this.errors.carry.get(key) ?? 0) + 1);
      return log.debug(line, problem.message);
    }
    if (problem.code === 'SA_UNKNOWN_HOST') {
      const host = typeof fields.host === 'string' ? fields.host : '';
      return this.unknownHosts.check(host) === 'first' ? log.info(line, problem.message) : log.debug(line, problem.message);
    }
    log.info(line, problem.message);
  }
}
