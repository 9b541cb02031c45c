/**
 * Ready means both: a task of the service is `running` (Swarm holds it in `starting` until its
 * HEALTHCHECK passes) AND the app answers an HTTP probe at the task's address.
 */
import { Agent, request } from 'undici';
import { statusAccepted, type AppPolicy } from '../labels.js';
import { TERMINAL_FAILURES, type SwarmClient, type TaskInfo } from '../swarm/swarm.js';

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

export class ReadinessProbe {
  private readonly agent: Agent;

  constructor(
    private readonly swarm: SwarmClient,
    private readonly probeTimeoutMs: number,
  ) {
    // The connect timeout matters most: a task that just died leaves an address nobody answers,
    // and undici's default 10 s connect timeout would stall the wake loop.
    this.agent = new Agent({ pipelining: 0, connections: 64, connect: { timeout: probeTimeoutMs } });
  }

  async check(policy: AppPolicy, knownTaskIds: ReadonlySet<string>): Promise<ReadinessResult> {
    const tasks = await this.swarm.listTasks(policy.serviceId);
    const running = tasks.filter((t) => t.state === 'running' && t.desiredState === 'running');
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
