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
    const { level, heldBack } = this.levelOf(problem, fields);
    // Built only when written: under a flood nearly every line is a debug line that pino drops,
    // and building it (an object spread followed by more keys is slow in V8) was ~2 µs of a 404.
    if (!log.isLevelEnabled(level)) return;
    const line: Record<string, unknown> = { code: problem.code, status: problem.status, app: problem.app, ...fields };
    if (problem.detail) line.detail = problem.detail;
    if (heldBack) line.heldBack = heldBack;
    log[level](line, heldBack ? `${problem.message} (${heldBack} more like it held back at debug)` : problem.message);
  }

  /** The line's level, and how many lines like it were held back since the last one written (5xx only). */
  private levelOf(problem: HttpProblem, fields: Record<string, unknown>): { level: 'error' | 'info' | 'debug'; heldBack?: number | undefined } {
    if (problem.status >= 500) {
      const key = `${problem.app ?? ''}\u0000${problem.code}`;
      const seen = this.errors.check(key);
      if (seen === 'first') {
        const held = this.errors.carry.get(key);
        this.errors.carry.delete(key);
        return { level: 'error', heldBack: held };
      }
      if (seen === 'seen') this.errors.carry.set(key, (this.errors.carry.get(key) ?? 0) + 1);
      return { level: 'debug' };
    }
    if (problem.code === 'SA_UNKNOWN_HOST') {
      const host = typeof fields.host === 'string' ? fields.host : '';
      return { level: this.unknownHosts.check(host) === 'first' ? 'info' : 'debug' };
    }
    return { level: 'info' };
  }
}
