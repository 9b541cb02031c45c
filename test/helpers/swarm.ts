/**
 * Test access to the real local swarm started by scripts/swarm-up.sh (DOCKER_HOST and SA_NETWORK
 * come from /var/tmp/swarm-activator/env, exported by scripts/test.sh).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import pino from 'pino';
import type { Test } from 'tap';
import { DockerodeSwarm, dockerOptionsFromHost } from '../../src/swarm/dockerode-swarm.js';
import { LABELS } from '../../src/labels.js';

function envFromStateFile(): Record<string, string> {
  const file = `${process.env.SA_STATE_DIR ?? '/var/tmp/swarm-activator'}/env`;
  const out: Record<string, string> = {};
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1] as string] = (m[2] as string).replace(/^'(.*)'$/, '$1');
    }
  } catch {
    // not up: the tests will fail with a clear message from docker()
  }
  return out;
}

const stateEnv = envFromStateFile();
export const DOCKER_HOST = process.env.DOCKER_HOST ?? stateEnv.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
export const SA_NETWORK = process.env.SA_NETWORK ?? stateEnv.SA_NETWORK ?? 'sa-net';
export const REDIS_URL = process.env.REDIS_URL ?? stateEnv.REDIS_URL;
export const docker = new Docker(dockerOptionsFromHost(DOCKER_HOST));

/**
 * Where a test's services run: the single-node swarm (the default) or a node of the three-node
 * one (test/helpers/multinode.ts). `address` is where its host-mode published ports answer.
 */
export interface SwarmTarget {
  docker: Docker;
  dockerHost: string;
  network: string;
  address: string;
}
export const localSwarm: SwarmTarget = { docker, dockerHost: DOCKER_HOST, network: SA_NETWORK, address: '127.0.0.1' };

/** A fresh id per test file: apps and activators of one file carry it, so files never collide. */
export function runId(prefix = 't'): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** A TCP port that is free on the host right now (for host-mode publishing). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface ServiceState {
  id: string;
  version: number;
  replicas: number;
  labels: Record<string, string>;
}

export async function serviceState(name: string, on: SwarmTarget = localSwarm): Promise<ServiceState> {
  const s = (await on.docker.getService(name).inspect()) as { ID: string; Version: { Index: number }; Spec: { Labels?: Record<string, string>; Mode: { Replicated?: { Replicas?: number } } } };
  return { id: s.ID, version: s.Version.Index, replicas: s.Spec.Mode.Replicated?.Replicas ?? 0, labels: s.Spec.Labels ?? {} };
}

/**
 * The service's tasks once Swarm says at least one is `running`. A woken task can answer while
 * Swarm still says `starting` (its HEALTHCHECK pending), so a test that asks where it runs waits.
 */
export async function waitRunningTasks(name: string, on: SwarmTarget = localSwarm, timeoutMs = 30_000): ReturnType<typeof runningTasks> {
  return waitFor(`${name}: a task running`, async () => {
    const tasks = await runningTasks(name, on);
    return tasks.length > 0 ? tasks : undefined;
  }, timeoutMs, 100);
}

export async function runningTasks(name: string, on: SwarmTarget = localSwarm): Promise<Array<{ id: string; ip: string | undefined; containerId: string | undefined; nodeId: string }>> {
  const tasks = (await on.docker.listTasks({ filters: { service: [name], 'desired-state': ['running'] } })) as Array<{
    ID: string;
    NodeID: string;
    Status: { State: string; ContainerStatus?: { ContainerID?: string } };
    NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>;
  }>;
  return tasks
    .filter((t) => t.Status.State === 'running')
    .map((t) => ({
      id: t.ID,
      ip: t.NetworksAttachments?.find((a) => a.Network.Spec.Name === on.network)?.Addresses[0]?.split('/')[0],
      containerId: t.Status.ContainerStatus?.ContainerID,
      nodeId: t.NodeID,
    }));
}

/** Samples the service until `ms` passed; returns the lowest replica count and the versions seen. */
export async function watchReplicas(name: string, ms: number): Promise<{ min: number; versions: Set<number> }> {
  const until = Date.now() + ms;
  let min = Infinity;
  const versions = new Set<number>();
  while (Date.now() < until) {
    const s = await serviceState(name).catch(() => undefined);
    if (!s) break; // removed by a failing test's teardown: stop quietly
    min = Math.min(min, s.replicas);
    versions.add(s.version);
    await new Promise((r) => setTimeout(r, 150));
  }
  return { min, versions };
}

/** Waits (bounded) for the service to reach 0 replicas; returns when that was first seen. */
export async function waitAsleep(name: string, timeoutMs = 15_000, on: SwarmTarget = localSwarm): Promise<number> {
  await waitFor(`${name} at 0 replicas`, async () => (await serviceState(name, on)).replicas === 0, timeoutMs, 50);
  return Date.now();
}

export interface AppOptions {
  /** Service name; must be unique (include the run id). */
  name: string;
  run: string;
  image?: string;
  host?: string;
  replicas?: number;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  /** Host-mode published port for direct access from the host (optional). */
  publishPort?: number;
  /** Override the image's HEALTHCHECK interval (ms), or disable it with 0. */
  healthIntervalMs?: number;
  /** Placement constraints, e.g. node.labels.sa.node!=n1. */
  constraints?: string[];
  on?: SwarmTarget;
  /** Task memory reservation / limit (bytes), as a stack file's deploy.resources sets them. */
  memoryReservation?: number;
  memoryLimit?: number;
}

export interface TestApp {
  name: string;
  host: string;
  remove: () => Promise<void>;
}

/** What test/apps/sample-app answers: the request as it arrived, and who sent it. */
export interface SampleAppEcho {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
  hostname: string;
  /** Who connected: the activator's task or Traefik's (IPv4, unmapped). */
  remoteAddress: string;
}

/** The cold POST that wake.test.ts and traefik.test.ts send (/submit/form?a=1&b=two, a JSON body, x-custom, a cookie), as the app must have seen it. */
export function assertTestPostArrived(t: Pick<Test, 'equal' | 'same'>, echo: SampleAppEcho, body: string): void {
  t.equal(echo.method, 'POST');
  t.equal(echo.path, '/submit/form');
  t.same(echo.query, { a: '1', b: 'two' });
  t.equal(echo.body, body, 'body byte-identical');
  t.equal(echo.headers['content-type'], 'application/json; charset=utf-8');
  t.equal(echo.headers['x-custom'], 'kept');
  t.equal(echo.headers.cookie, 'sid=abc');
}

/** Creates an activator-managed service (asleep unless replicas given) on the shared network. */
export async function createApp(opts: AppOptions): Promise<TestApp> {
  const host = opts.host ?? `${opts.name}.test.local`;
  const labels: Record<string, string> = {
    'sa.test': '1',
    'sa.run': opts.run,
    [LABELS.enable]: 'true',
    [LABELS.hosts]: host,
    [LABELS.port]: '80',
    ...opts.labels,
  };
  const health =
    opts.healthIntervalMs === undefined
      ? undefined
      : opts.healthIntervalMs === 0
        ? { Test: ['NONE'] }
        : { Test: ['CMD', '/healthcheck'], Interval: opts.healthIntervalMs * 1e6, Timeout: 2e9, Retries: 3 };
  const on = opts.on ?? localSwarm;
  await on.docker.createService({
    Name: opts.name,
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: opts.image ?? 'sa/sample-app:dev',
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
        StopGracePeriod: 2e9,
        ...(health ? { HealthCheck: health } : {}),
      },
      RestartPolicy: { Condition: 'any', Delay: 500e6 },
      Networks: [{ Target: on.network }],
      ...(opts.constraints ? { Placement: { Constraints: opts.constraints } } : {}),
      ...(opts.memoryReservation || opts.memoryLimit
        ? { Resources: { ...(opts.memoryReservation ? { Reservations: { MemoryBytes: opts.memoryReservation } } : {}), ...(opts.memoryLimit ? { Limits: { MemoryBytes: opts.memoryLimit } } : {}) } }
        : {}),
    },
    Mode: { Replicated: { Replicas: opts.replicas ?? 0 } },
    ...(opts.publishPort ? { EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: opts.publishPort, PublishMode: 'host' }] } } : {}),
  } as unknown as Docker.CreateServiceOptions);
  return {
    name: opts.name,
    host,
    remove: () => removeService(opts.name, on),
  };
}

export async function removeService(name: string, on: SwarmTarget = localSwarm): Promise<void> {
  try {
    await on.docker.getService(name).remove();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

/** The service's container logs (all tasks), for failure messages. */
export async function serviceLogs(name: string, tail = 200, on: SwarmTarget = localSwarm): Promise<string> {
  try {
    const buf = (await on.docker.getService(name).logs({ stdout: true, stderr: true, tail, follow: false })) as unknown as Buffer;
    return demux(buf);
  } catch (err) {
    return `(no logs: ${(err as Error).message})`;
  }
}

/** Docker's multiplexed log stream → text. */
function demux(buf: Buffer): string {
  const out: string[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len).toString('utf8'));
    i += 8 + len;
  }
  return out.length > 0 ? out.join('') : buf.toString('utf8');
}

export interface ServiceUpdate {
  action: string;
  replicasOld: number | undefined;
  replicasNew: number | undefined;
}

/**
 * Records Docker's own service events for one service: the ground truth for "how many scale-ups"
 * (Version.Index is the swarm store's global index, so its delta also counts other services).
 */
export async function recordServiceEvents(name: string): Promise<{ updates: ServiceUpdate[]; scaleUps(): number; stop(): void }> {
  const controller = new AbortController();
  const updates: ServiceUpdate[] = [];
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log: pino({ level: 'silent' }) });
  const watching = swarm.watchServices(controller.signal, (e) => {
    if (e.serviceName === name) updates.push({ action: e.action, replicasOld: e.replicasOld, replicasNew: e.replicasNew });
  });
  watching.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 100)); // the subscription is live before the caller acts
  return {
    updates,
    scaleUps: () => updates.filter((u) => u.action === 'update' && u.replicasOld !== undefined && u.replicasNew !== undefined && u.replicasNew > u.replicasOld).length,
    stop: () => controller.abort(),
  };
}
