/**
 * Uptime monitors (matched by User-Agent or path) get a cheap answer from the activator itself,
 * whatever the app's state: they never wake an app and never count as activity.
 *
 * They are not proxied even when the app is awake: the proxied bytes would show up in the app's
 * container network counters (the network-bytes source cannot tell a monitor from a user), and a
 * proxied request racing a scale-down would take the proxy's retry path, which wakes the app.
 * The answer says what the activator knows (x-activator-state: asleep | waking | awake).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config.js';

export type MonitorConfig = Pick<Config, 'monitorUserAgents' | 'monitorPaths' | 'monitorStatus'>;
export type MonitorState = 'asleep' | 'waking' | 'awake';

export function isUptimeMonitor(request: { headers: IncomingHttpHeaders; url: string }, config: MonitorConfig): boolean {
  const ua = request.headers['user-agent'];
  if (config.monitorUserAgents && ua !== undefined && config.monitorUserAgents.test(ua)) return true;
  if (config.monitorPaths) {
    const q = request.url.indexOf('?');
    if (config.monitorPaths.test(q >= 0 ? request.url.slice(0, q) : request.url)) return true;
  }
  return false;
}

export function monitorState(replicas: number | null, waking: boolean): MonitorState {
  if (waking) return 'waking';
  return (replicas ?? 1) > 0 ? 'awake' : 'asleep';
}

/** The cheap answer: configured status, no caching, a one-word body. */
export function monitorAnswer(state: MonitorState, config: MonitorConfig): { status: number; headers: Record<string, string>; body: string } {
  return {
    status: config.monitorStatus,
    headers: { 'cache-control': 'no-store', 'x-activator-state': state, 'content-type': 'text/plain; charset=utf-8' },
    body: `${state}\n`,
  };
}
