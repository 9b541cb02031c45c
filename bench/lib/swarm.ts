/** Swarm helpers for the bench, on top of the test helpers (same engine, same network, same labels). */
import type Docker from 'dockerode';
import { docker, waitFor } from '../../test/helpers/swarm.js';

interface RawTask {
  ID: string;
  DesiredState: string;
  Status: { State: string; ContainerStatus?: { ContainerID?: string } };
}

const LIVE_STATES = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/** Inspect, then update with the version (replicas only). */
export async function scaleTo(name: string, replicas: number): Promise<void> {
  const svc = docker.getService(name);
  const info = (await svc.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
  await svc.update({ ...info.Spec, version: info.Version.Index, Mode: { Replicated: { Replicas: replicas } } });
}

/** Scaled to 0 and no task of it left in a live state (so the next start is from fully stopped). */
export async function stopFully(name: string, timeoutMs = 30_000): Promise<void> {
  await scaleTo(name, 0);
  await waitFor(`${name} fully stopped`, async () => {
    const tasks = (await docker.listTasks({ filters: { service: [name] } })) as RawTask[];
    return tasks.every((t) => !LIVE_STATES.has(t.Status.State));
  }, timeoutMs, 50);
}

export interface ServiceContainer {
  id: string;
  pid: number;
  /** Address on docker_gwbridge (tasks with published ports): reachable from the host without docker-proxy. */
  gwIp: string | undefined;
}

/** The container of the service's running task (the bench runs on the engine's host). */
export async function containerOf(service: string): Promise<ServiceContainer> {
  const tasks = (await docker.listTasks({ filters: { service: [service], 'desired-state': ['running'] } })) as RawTask[];
  // `starting` too: the activator image's HEALTHCHECK (10 s interval) keeps a task that already
  // serves in `starting` until its first check passes.
  const id = tasks.find((t) => t.Status.State === 'running' || t.Status.State === 'starting')?.Status.ContainerStatus?.ContainerID;
  if (!id) throw new Error(`no running container for ${service}`);
  const info = (await docker.getContainer(id).inspect()) as { State: { Pid: number } };
  // A task with published ports is attached to docker_gwbridge, but only the network lists it.
  const gw = (await docker.getNetwork('docker_gwbridge').inspect().catch(() => undefined)) as { Containers?: Record<string, { IPv4Address?: string }> } | undefined;
  return { id, pid: info.State.Pid, gwIp: gw?.Containers?.[id]?.IPv4Address?.split('/')[0] || undefined };
}

/** Runs `fn` over items with at most `limit` at once; returns the results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface ScaleUpCounter {
  /** Service update events with replicas.new > replicas.old seen so far. */
  scaleUps(): number;
  updates(): number;
  stop(): void;
}

/** Counts scale-ups of a service from Docker's own event stream. */
export async function countScaleUps(service: string): Promise<ScaleUpCounter> {
  const abort = new AbortController();
  const stream = (await docker.getEvents({ filters: { type: ['service'], service: [service] }, abortSignal: abort.signal } as Docker.GetEventsOptions));
  let ups = 0;
  let updates = 0;
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const ev = JSON.parse(line) as { Action: string; Actor?: { Attributes?: Record<string, string> } };
      if (ev.Action !== 'update') continue;
      updates++;
      const a = ev.Actor?.Attributes ?? {};
      if (a['replicas.new'] !== undefined && Number(a['replicas.new']) > Number(a['replicas.old'] ?? 0)) ups++;
    }
  });
  stream.on('error', () => undefined);
  return {
    scaleUps: () => ups,
    updates: () => updates,
    stop: () => {
      abort.abort();
      (stream as unknown as { destroy?: () => void }).destroy?.();
    },
  };
}

/** The activator image the bench runs (BENCH_ACTIVATOR_IMAGE, e.g. to compare two builds). */
export function activatorImage(): string {
  return process.env.BENCH_ACTIVATOR_IMAGE || 'swarm-activator:dev';
}

/**
 * The JSON log lines of one container, read from the engine's local log (the container, not the
 * service: `docker service logs` goes through the swarm's log broker and came back empty with
 * 5,000 services and under a 10,000-connection burst).
 */
export async function containerLogLines(containerId: string): Promise<Array<Record<string, unknown>>> {
  const raw = await docker.getContainer(containerId).logs({ stdout: true, stderr: true, follow: false });
  const lines: Array<Record<string, unknown>> = [];
  // Docker's multiplexed stream: an 8-byte header (stream, 0, 0, 0, length) per frame.
  let text = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const len = raw.readUInt32BE(i + 4);
    text += raw.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  for (const line of text.split('\n')) {
    const at = line.indexOf('{');
    if (at < 0) continue;
    try {
      lines.push(JSON.parse(line.slice(at)) as Record<string, unknown>);
    } catch {
      // not a JSON line (Node's own warnings)
    }
  }
  return lines;
}
