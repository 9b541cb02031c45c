/**
 * Ready means both: a task of the service may serve (see taskMayServe) AND the app answers an HTTP
 * probe at the task's address. The probe is the proof that the app serves; Swarm's health state
 * is only waited for when the app asks for it (`swarm-activator.ready=healthy`), because Swarm holds
 * a task in `starting` until its first HEALTHCHECK passes, often 30 s after the app already serves.
 */
import { Agent, request } from 'undici';
import { statusAccepted, type AppPolicy, type ReadyRule } from '../labels.js';
import { TERMINAL_FAILURES, type SwarmClient, type TaskInfo } from '../swarm/swarm.js';
import type { TaskStarts } from './task-starts.js';

export interface Endpoint {
  ip: string;
  port: number;
  taskId: string;
}

export interface ReadinessResult {
  ready: Endpoint[];
  /** Swarm's error for a task that failed since the wake began (crash, unhealthy, missing image). */
  failure: string | undefined;
  /** What the app looked like, for timeout messages: "task abc starting", "probe: 503". */
  lastSeen: string;
  /** Tasks Swarm means to run (desired state running), whatever their current state. */
  scheduled: number;
  /** Running tasks whose address refused the connection: the app is still booting. */
  booting: Endpoint[];
}

/** Traefik's rule: the labelled network if the task has it, else the first network attached. */
export function taskAddress(task: TaskInfo, network: string | undefined): string | undefined {
  const addresses = task.addresses.filter((a) => a.ip && a.networkName !== 'ingress');
  if (network) {
    const match = addresses.find((a) => a.networkName === network || a.networkId === network);
    if (match) return match.ip;
  }
  return addresses[0]?.ip;
}

/**
 * How long a task must have been `starting` before it is probed. Swarm says `starting` both while
 * the container starts and while a HEALTHCHECK is pending, and its task status carries no process
 * id then (Engine 20.10 reports PID 0). A probe to an address with nobody behind it yet leaves a
 * stale neighbour entry that fails the next probes for about a second, so a task is only probed
 * once its container is surely up, or once its container's start was heard (TaskStarts: tasks on
 * the activator's own engine); a task without a HEALTHCHECK is `running` well before this.
 */
export const STARTING_SETTLE_MS = 1000;

/**
 * A task that may take requests: desired running, and `running`, or (unless the app waits for
 * Swarm's health) `starting` with a container that was heard starting or for at least
 * STARTING_SETTLE_MS.
 */
export function taskMayServe(task: TaskInfo, readyWhen: ReadyRule, now = Date.now(), starts?: TaskStarts): boolean {
  if (task.desiredState !== 'running') return false;
  if (task.state === 'running') return true;
  if (readyWhen !== 'probe' || task.state !== 'starting' || !task.containerId) return false;
  if (starts?.has(task.id)) return true;
  if (!task.stateSince) return false;
  const since = Date.parse(task.stateSince);
  return Number.isFinite(since) && now - since >= STARTING_SETTLE_MS;
}

export class ReadinessProbe {
  private readonly agent: Agent;

  constructor(
    private readonly swarm: SwarmClient,
    private readonly probeTimeoutMs: number,
    private readonly starts?: TaskStarts,
  ) {
    // The connect timeout matters most: a task that just died leaves an address nobody answers,
    // and undici's default 10 s connect timeout would stall the wake loop.
    this.agent = new Agent({ pipelining: 0, connections: 64, connect: { timeout: probeTimeoutMs } });
  }

  async check(policy: AppPolicy, knownTaskIds: ReadonlySet<string>): Promise<ReadinessResult> {
    const tasks = await this.swarm.listTasks(policy.serviceId);
    // Workers have no probe: for them only Swarm's `running` says anything.
    const now = Date.now();
    const running = tasks.filter((t) => taskMayServe(t, policy.http ? policy.readyWhen : 'healthy', now, this.starts));
    const scheduled = tasks.filter((t) => t.desiredState === 'running').length;
    const newFailure = tasks
      .filter((t) => TERMINAL_FAILURES.has(t.state) && !knownTaskIds.has(t.id))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0];

    if (!policy.http) {
      return { ready: running.map((t) => ({ ip: '', port: 0, taskId: t.id })), failure: failureText(newFailure), lastSeen: describe(tasks), scheduled, booting: [] };
    }

    const candidates: Endpoint[] = [];
    for (const task of running) {
      const ip = taskAddress(task, policy.network);
      if (ip) candidates.push({ ip, port: policy.port, taskId: task.id });
    }
    const probes = await Promise.all(candidates.map((ep) => this.probe(ep, policy)));
    const ready = candidates.filter((_, i) => probes[i]?.ok);
    const probeNote = probes.find((p) => !p.ok)?.detail;
    return {
      ready,
      failure: ready.length === 0 ? failureText(newFailure) : undefined,
      lastSeen: probeNote ? `${describe(tasks)}; probe: ${probeNote}` : describe(tasks),
      scheduled,
      booting: candidates.filter((_, i) => probes[i]?.refused),
    };
  }

  /** Probes known task addresses again (no Docker call): which answer now, which still refuse. */
  async probeEndpoints(endpoints: Endpoint[], policy: AppPolicy): Promise<{ ready: Endpoint[]; booting: Endpoint[] }> {
    const probes = await Promise.all(endpoints.map((ep) => this.probe(ep, policy)));
    return { ready: endpoints.filter((_, i) => probes[i]?.ok), booting: endpoints.filter((_, i) => probes[i]?.refused) };
  }

  async probe(ep: Endpoint, policy: AppPolicy): Promise<{ ok: boolean; detail: string; refused?: boolean }> {
    try {
      const res = await request(`http://${ep.ip}:${ep.port}${policy.probe.path}`, {
        method: 'GET',
        dispatcher: this.agent,
        headers: { host: policy.hosts[0] ?? ep.ip, 'user-agent': 'swarm-activator-probe' },
        headersTimeout: this.probeTimeoutMs,
        bodyTimeout: this.probeTimeoutMs,
        reset: true,
      });
      await res.body.dump();
      const ok = statusAccepted(res.statusCode, policy.probe.statuses);
      return { ok, detail: `HTTP ${res.statusCode}` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { ok: false, detail: code ?? (err as Error).message, refused: code === 'ECONNREFUSED' };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function failureText(task: TaskInfo | undefined): string | undefined {
  if (!task) return undefined;
  const parts = [task.error ?? task.message];
  if (task.exitCode !== undefined && task.exitCode !== 0 && !String(task.error).includes(`(${task.exitCode})`)) parts.push(`exit code ${task.exitCode}`);
  return `task ${task.id.slice(0, 12)} ${task.state}: ${parts.filter(Boolean).join(', ')}`;
}

function describe(tasks: TaskInfo[]): string {
  const live = tasks.filter((t) => t.desiredState === 'running');
  if (live.length === 0) return 'no task scheduled';
  return live.map((t) => `task ${t.id.slice(0, 12)} ${t.state}`).join(', ');
}
