/**
 * Waiting until services reach the replicas asked for: an asleep service has 0 desired replicas and
 * no task with a container; an awake one has that many running tasks (running = healthy when the
 * image has a HEALTHCHECK). Fails early when tasks keep failing or a rolling update paused.
 */
import type { TaskInfo, TaskState } from '../swarm/swarm.js';
import { TimeoutError, DeployError } from './errors.js';
import type { StackEngine, StackService } from './stack-engine.js';

export interface ConvergeTarget {
  /** Swarm service name. */
  service: string;
  replicas: number;
}

export interface ServiceProgress {
  service: string;
  desired: number;
  running: number;
  state: 'converged' | 'pending' | 'failed';
  /** One line: what is going on ("1/2 running", "starting", "task: non-zero exit (1)"). */
  detail: string;
}

/** Task states in which a container exists (or is about to). */
const LIVE: ReadonlySet<TaskState> = new Set(['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);
const FAILED: ReadonlySet<TaskState> = new Set(['failed', 'rejected', 'orphaned']);
/** Failed tasks (created since the change) after which we stop waiting. */
export const FAILURES_BEFORE_GIVING_UP = 3;

export function assessService(target: ConvergeTarget, svc: StackService | undefined, tasks: TaskInfo[], sinceMs: number): ServiceProgress {
  const base = { service: target.service, desired: target.replicas };
  if (!svc) return { ...base, running: 0, state: 'pending', detail: 'service not created yet' };
  const running = tasks.filter((t) => t.state === 'running' && t.desiredState === 'running').length;
  const live = tasks.filter((t) => LIVE.has(t.state)).length;
  const recent = tasks.filter((t) => Date.parse(t.createdAt) >= sinceMs - 1000).sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const failures = recent.filter((t) => FAILED.has(t.state));

  if (svc.updateState === 'paused' || svc.updateState === 'rollback_completed' || svc.updateState === 'rollback_paused') {
    return { ...base, running, state: 'failed', detail: `update ${svc.updateState.replace('_', ' ')}: ${svc.updateMessage ?? 'no message'}` };
  }
  if (target.replicas > 0 && failures.length >= FAILURES_BEFORE_GIVING_UP) {
    const last = failures[0] as TaskInfo;
    const why = last.error ?? last.message;
    return { ...base, running, state: 'failed', detail: `${failures.length} tasks failed; last: ${why}${last.exitCode && !/exit/.test(why) ? ` (exit ${last.exitCode})` : ''}` };
  }
  if (svc.replicas !== target.replicas) {
    return { ...base, running, state: 'pending', detail: `desired replicas are ${svc.replicas ?? 'global'}, waiting for ${target.replicas}` };
  }
  const updating = svc.updateState === 'updating' || svc.updateState === 'rollback_started';
  if (target.replicas === 0) {
    return live === 0 ? { ...base, running, state: 'converged', detail: 'asleep (0 replicas)' } : { ...base, running, state: 'pending', detail: `stopping ${live} task${live === 1 ? '' : 's'}` };
  }
  if (running >= target.replicas && !updating) return { ...base, running, state: 'converged', detail: `${running}/${target.replicas} running` };
  const newest = recent.find((t) => t.desiredState === 'running') ?? recent[0];
  const note = newest?.error ?? (newest?.message && newest.message !== newest.state && newest.state !== 'running' ? newest.message : undefined);
  const why = newest ? `${newest.state}${note ? ` (${note})` : ''}` : 'no task yet';
  return { ...base, running, state: 'pending', detail: `${running}/${target.replicas} running, newest task ${why}${updating ? ', update in progress' : ''}` };
}

export interface ConvergeOptions {
  /** Tasks created before this are history, not failures of this change. */
  since: Date;
  timeoutMs: number;
  intervalMs?: number;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ConvergeResult {
  ms: number;
  services: ServiceProgress[];
}

export async function waitForConvergence(engine: StackEngine, targets: ConvergeTarget[], labelFilters: string[], options: ConvergeOptions): Promise<ConvergeResult> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const interval = options.intervalMs ?? 250;
  const lastLine = new Map<string, string>();
  for (;;) {
    const services = await engine.listServices(labelFilters);
    const progress = await Promise.all(
      targets.map(async (target) => {
        const svc = services.find((s) => s.name === target.service);
        const tasks = svc ? await engine.listTasks(svc.id) : [];
        return assessService(target, svc, tasks, options.since.getTime());
      }),
    );
    for (const p of progress) {
      const line = `${p.service}: ${p.detail}`;
      if (lastLine.get(p.service) !== line) {
        lastLine.set(p.service, line);
        options.onProgress?.(line);
      }
    }
    const failed = progress.filter((p) => p.state === 'failed');
    if (failed.length > 0) throw new DeployError(`did not converge: ${failed.map((p) => `${p.service}: ${p.detail}`).join('; ')}`);
    if (progress.every((p) => p.state === 'converged')) return { ms: Date.now() - started, services: progress };
    if (Date.now() >= deadline) {
      const pending = progress.filter((p) => p.state !== 'converged');
      throw new TimeoutError(`timed out after ${Math.round(options.timeoutMs / 1000)}s waiting for ${pending.map((p) => `${p.service} (${p.detail})`).join('; ')}`);
    }
    if (options.signal?.aborted) throw new DeployError('interrupted while waiting');
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(0, deadline - Date.now()))));
  }
}
