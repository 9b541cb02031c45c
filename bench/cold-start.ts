/**
 * Cold start: the floor against the activator, in alternating cycles, each from a fully stopped app
 * (scaled to 0, no live task left, and the activator has seen replicas 0).
 *   floor:     bench/cold-start/prober.mjs, a service on the overlay network: scale call → first 2xx
 *              of GET http://<task IP>:80/health, polled every 5 ms.
 *   activator: client on the host → the activator (a Swarm service, as in production) → first byte.
 * sample-app runs with its HEALTHCHECK disabled (HealthCheck NONE) so both measure the same thing;
 * the same cycles with the image's 1 s HEALTHCHECK are reported under `withHealthcheck`.
 */
import { resolve } from 'node:path';
import type Docker from 'dockerode';
import { Agent, request } from 'undici';
import { startActivator, type RunningActivator } from '../test/helpers/activator.js';
import { DOCKER_HOST, SA_NETWORK, createApp, docker, freePort, removeService, runId, serviceLogs, waitFor, type TestApp } from '../test/helpers/swarm.js';
import { onCleanup } from './lib/proc.js';
import { percentile, round, sleep } from './lib/stats.js';
import { activatorImage, stopFully } from './lib/swarm.js';

export interface ColdStartOptions {
  outDir: string;
  delays: number[];
  cycles: number;
  withHealthcheck: boolean;
  healthcheckCycles?: number;
  log: (line: string) => void;
}

interface FloorSample {
  floorMs: number;
  scaleCallMs: number;
  addressMs: number;
  containerStartMs: number | undefined;
  runningMs: number | undefined;
  attempts: number;
}

export interface ColdStartDelayResult {
  cycles: number;
  floorP50Ms: number;
  activatorP50Ms: number;
  overheadP50Ms: number;
  overheadP95Ms: number;
  floorP95Ms: number;
  activatorP95Ms: number;
  /** Scale call → the task container's `start` event (Docker), as seen by the prober. */
  containerStartP50Ms: number;
  /** Container start event → first 2xx (floor) / first byte (activator), and their difference. */
  afterStartFloorP50Ms: number;
  afterStartActivatorP50Ms: number;
  afterStartOverheadP50Ms: number;
  afterStartOverheadP95Ms: number;
  /** Scale call → Swarm reports the task `running` (the prober's 5 ms task poll). */
  runningP50Ms: number;
  samples: Record<'floorMs' | 'activatorMs' | 'containerStartMs' | 'runningMs' | 'floorAfterStartMs' | 'activatorAfterStartMs', number[]>;
}

/** Keyed by STARTUP_DELAY_MS ("0", "1000"), plus `withHealthcheck` (same keys) and `method`. */
export interface ColdStartResult {
  [delay: string]: ColdStartDelayResult | Record<string, ColdStartDelayResult> | string | undefined;
  withHealthcheck?: Record<string, ColdStartDelayResult>;
  method: string;
}

const PROBER_PORT = 9000;
/** Settle time after a stop, so container and network teardown don't overlap the next start. */
const SETTLE_MS = 500;

/** The floor's prober as a Swarm service on `network` (test/e2e/traefik-cold.test.ts uses it too). */
export async function startProber(run: string, network = SA_NETWORK): Promise<{ url: string; stop: () => Promise<void> }> {
  const name = `${run}-prober`;
  const port = await freePort();
  const socketPath = new URL(DOCKER_HOST).pathname;
  await removeService(name);
  await docker.createService({
    Name: name,
    Labels: { 'sa.test': '1', 'sa.bench': run },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'sa/sample-app:dev',
        Command: ['/usr/bin/node', '/bench/prober.mjs'],
        Env: [`PORT=${PROBER_PORT}`, `NETWORK=${network}`, 'DOCKER_SOCK=/var/run/docker.sock'],
        Mounts: [
          { Type: 'bind', Source: resolve('bench/cold-start/prober.mjs'), Target: '/bench/prober.mjs', ReadOnly: true },
          { Type: 'bind', Source: socketPath, Target: '/var/run/docker.sock' },
        ],
        HealthCheck: { Test: ['NONE'] },
        StopGracePeriod: 1e9,
      },
      RestartPolicy: { Condition: 'none' },
      Networks: [{ Target: network }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: PROBER_PORT, PublishedPort: port, PublishMode: 'host' }] },
  } as unknown as Docker.CreateServiceOptions);
  const stop = onCleanup(() => removeService(name));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('cold-start prober', async () => (await fetch(`${url}/ping`)).ok, 60_000, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nprober logs:\n${await serviceLogs(name)}`, { cause: err });
  }
  return { url, stop };
}

async function activatorSees(activator: RunningActivator, service: string, replicas: number): Promise<void> {
  await waitFor(`activator sees ${service} at ${replicas}`, async () => {
    const apps = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; replicas: number | null; state: string }>;
    const app = apps.find((a) => a.service === service);
    return app !== undefined && app.replicas === replicas && app.state !== 'waking';
  }, 30_000, 20);
}

function summarise(floor: FloorSample[], activatorMs: number[], activatorAfterStartMs: number[]): ColdStartDelayResult {
  const floorMs = floor.map((s) => s.floorMs);
  const runningMs = floor.map((s) => s.runningMs).filter((v): v is number => v !== undefined);
  const containerStartMs = floor.map((s) => s.containerStartMs).filter((v): v is number => v !== undefined);
  const f50 = percentile(floorMs, 50);
  const f95 = percentile(floorMs, 95);
  const a50 = percentile(activatorMs, 50);
  const a95 = percentile(activatorMs, 95);
  // From the task container's start on (Docker's start event): Swarm's scheduling and container
  // creation, which vary by ±100 ms between cycles, drop out of the comparison.
  const floorAfter = floor.filter((s) => s.containerStartMs !== undefined).map((s) => s.floorMs - (s.containerStartMs as number));
  const actAfter = activatorAfterStartMs.filter((v) => Number.isFinite(v));
  return {
    cycles: activatorMs.length,
    floorP50Ms: round(f50),
    activatorP50Ms: round(a50),
    overheadP50Ms: round(a50 - f50),
    overheadP95Ms: round(a95 - f95),
    floorP95Ms: round(f95),
    activatorP95Ms: round(a95),
    containerStartP50Ms: round(percentile(containerStartMs, 50)),
    afterStartFloorP50Ms: round(percentile(floorAfter, 50)),
    afterStartActivatorP50Ms: round(percentile(actAfter, 50)),
    afterStartOverheadP50Ms: round(percentile(actAfter, 50) - percentile(floorAfter, 50)),
    afterStartOverheadP95Ms: round(percentile(actAfter, 95) - percentile(floorAfter, 95)),
    runningP50Ms: round(percentile(runningMs, 50)),
    samples: {
      floorMs: floorMs.map((v) => round(v)),
      activatorMs: activatorMs.map((v) => round(v)),
      containerStartMs: containerStartMs.map((v) => round(v)),
      runningMs: runningMs.map((v) => round(v)),
      floorAfterStartMs: floorAfter.map((v) => round(v)),
      activatorAfterStartMs: actAfter.map((v) => round(v)),
    },
  };
}

async function runCycles(app: TestApp, cycles: number, prober: string, activator: RunningActivator, client: Agent, label: string, log: (line: string) => void): Promise<ColdStartDelayResult> {
  const floor: FloorSample[] = [];
  const act: number[] = [];
  const actAfterStart: number[] = [];
  for (let i = 0; i < cycles; i++) {
    // Floor cycle.
    await stopFully(app.name);
    await activatorSees(activator, app.name, 0);
    await sleep(SETTLE_MS);
    const res = await fetch(`${prober}/measure?service=${encodeURIComponent(app.name)}&timeoutMs=60000&intervalMs=5`, { signal: AbortSignal.timeout(90_000) });
    const body = (await res.json()) as FloorSample & { error?: string };
    if (!res.ok) throw new Error(`prober: ${body.error ?? res.status}`);
    floor.push(body);

    // Activator cycle.
    await stopFully(app.name);
    await activatorSees(activator, app.name, 0);
    await sleep(SETTLE_MS);
    const started = containerStartEvent(app.name);
    const t0 = performance.now();
    const r = await request(`${activator.url}/cold-start?cycle=${i}`, { headers: { host: app.host }, dispatcher: client, headersTimeout: 120_000, bodyTimeout: 120_000 });
    const ttfb = performance.now() - t0; // request() settles when the status line and headers arrive
    await r.body.text();
    if (r.statusCode !== 200 || r.headers['x-activator-cold-start'] !== 'true') throw new Error(`activator cold start answered ${r.statusCode} (cold-start header ${String(r.headers['x-activator-cold-start'])})`);
    act.push(ttfb);
    const startAt = await started.at;
    started.stop();
    actAfterStart.push(startAt === undefined ? Number.NaN : ttfb - (startAt - t0));
    log(`  coldStart ${label} cycle ${i + 1}/${cycles}: floor ${body.floorMs.toFixed(0)} ms (container start ${body.containerStartMs?.toFixed(0) ?? '?'}, running ${body.runningMs?.toFixed(0) ?? '?'}), activator ${ttfb.toFixed(0)} ms (container start ${startAt === undefined ? '?' : (startAt - t0).toFixed(0)})`);
  }
  await stopFully(app.name);
  return summarise(floor, act, actAfterStart);
}

/** Arrival time (performance.now) of the service's next container `start` event, from Docker's event stream. */
function containerStartEvent(service: string): { at: Promise<number | undefined>; stop: () => void } {
  const abort = new AbortController();
  const at = (async () => {
    const stream = (await docker.getEvents({ since: Math.floor(Date.now() / 1000) - 1, filters: { type: ['container'], event: ['start'], label: [`com.docker.swarm.service.name=${service}`] }, abortSignal: abort.signal } as Docker.GetEventsOptions));
    return new Promise<number | undefined>((resolve) => {
      const since = Date.now() * 1e6 - 200e6; // ignore replayed starts of earlier cycles
      stream.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line.trim()) continue;
          const ev = JSON.parse(line) as { timeNano?: number };
          if ((ev.timeNano ?? 0) >= since) return resolve(performance.now());
        }
      });
      stream.on('error', () => resolve(undefined));
      stream.on('end', () => resolve(undefined));
      abort.signal.addEventListener('abort', () => resolve(undefined));
    });
  })().catch(() => undefined);
  return {
    at: Promise.race([at, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000).unref())]),
    stop: () => abort.abort(),
  };
}

export async function coldStart(opts: ColdStartOptions): Promise<ColdStartResult> {
  const run = runId('benchcold');
  const prober = await startProber(run);
  const activator = await startActivator({ name: `${run}-activator`, run, image: activatorImage(), env: { ACTIVATOR_WAKE_TIMEOUT: '60s' } });
  const stopActivator = onCleanup(() => activator.stop());
  const client = new Agent({ connections: 4, pipelining: 1 });
  const result: ColdStartResult = { method: 'overheadPnnMs = activator pnn − floor pnn, each over its own cycles (alternating floor/activator cycles, each from a fully stopped app)' };
  try {
    const variants: Array<{ key: 'plain' | 'hc'; cycles: number }> = [{ key: 'plain', cycles: opts.cycles }];
    if (opts.withHealthcheck) variants.push({ key: 'hc', cycles: opts.healthcheckCycles ?? opts.cycles });
    for (const variant of variants) {
      for (const delay of opts.delays) {
        const name = `${run}-${variant.key}-d${delay}`;
        const app = await createApp({ name, run, env: { STARTUP_DELAY_MS: String(delay) }, ...(variant.key === 'plain' ? { healthIntervalMs: 0 } : {}) });
        const remove = onCleanup(() => app.remove());
        try {
          await activator.waitForApp(name);
          const r = await runCycles(app, variant.cycles, prober.url, activator, client, `${delay} ms${variant.key === 'hc' ? ' +healthcheck' : ''}`, opts.log);
          if (variant.key === 'plain') result[String(delay)] = r;
          else (result.withHealthcheck ??= {})[String(delay)] = r;
        } finally {
          await remove();
        }
      }
    }
    return result;
  } finally {
    await client.close();
    await stopActivator();
    await prober.stop();
  }
}
