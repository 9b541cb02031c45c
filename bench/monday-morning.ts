/**
 * Monday morning (issue 14 §3): N registered apps at 0 replicas (default 1,000; dnsrr, the tiny
 * sample-app image, HEALTHCHECK off), and W of them (default 50) woken at once through the
 * activator by one request each.
 *   floor:     each of the W apps woken alone, earlier in the same run, by the cold-start prober
 *              (scale call → first 2xx from the task, from inside the overlay network).
 *   direct:    the same W apps scaled at once by the prober (no activator), scale call → first 2xx
 *              of each (one task list for all of them every 50 ms): what Swarm, the engine and the
 *              apps' own start-up take for W concurrent starts on this machine (2 cores: W node
 *              processes booting at once share the CPU, so they all finish late, and together).
 *   activator: W concurrent requests, one per app, each from the request to its first byte.
 * overhead_i = activator_i − floor_i; docker calls are the activator's own counter over the wave.
 */
import type Docker from 'dockerode';
import { Agent, request } from 'undici';
import { LABELS } from '../src/labels.js';
import { startActivator, type RunningActivator } from '../test/helpers/activator.js';
import { SA_NETWORK, docker, removeService, runId, waitFor } from '../test/helpers/swarm.js';
import { startProber } from './cold-start.js';
import { onCleanup } from './lib/proc.js';
import { percentile, round, sleep } from './lib/stats.js';
import { activatorImage, mapLimit, stopFully } from './lib/swarm.js';

export interface MondayMorningOptions {
  apps: number;
  wakes: number;
  log: (line: string) => void;
}

export interface MondayMorningResult {
  apps: number;
  wakes: number;
  ok: number;
  overheadP50Ms: number;
  overheadP95Ms: number;
  dockerCalls: number;
  longestWaitMs: number;
  floorP50Ms: number;
  floorP95Ms: number;
  activatorP50Ms: number;
  activatorP95Ms: number;
  /** The W apps scaled at once without the activator (the prober): scale call → first 2xx, and → running. */
  directConcurrentP50Ms: number;
  directConcurrentP95Ms: number;
  directConcurrentMaxMs: number;
  /** Activator wave percentiles minus the direct wave's: what the activator adds when all start at once. */
  overVsConcurrentFloorP50Ms: number;
  overVsConcurrentFloorP95Ms: number;
  longestOverDirectLongestMs: number;
  directConcurrentRunningP50Ms: number;
  dockerCallsByOp: Record<string, number>;
  discoveryMs: number;
  createMs: number;
  statuses: Record<string, number>;
  samples: { floorMs: number[]; activatorMs: number[]; overheadMs: number[]; directMs: number[]; directRunningMs: number[] };
  sablier: string;
}

const CONCURRENCY = 16;

/** A labelled app at 0 replicas, dnsrr (no VIP address per service: 1,000 would exhaust a /24). */
async function createSleepingApp(name: string, run: string, host: string): Promise<void> {
  await docker.createService({
    Name: name,
    Labels: { 'sa.test': '1', 'sa.run': run, [LABELS.enable]: 'true', [LABELS.hosts]: host, [LABELS.port]: '80' },
    TaskTemplate: {
      ContainerSpec: { Image: 'sa/sample-app:dev', StopGracePeriod: 1e9, HealthCheck: { Test: ['NONE'] } },
      RestartPolicy: { Condition: 'any', Delay: 500e6 },
      Networks: [{ Target: SA_NETWORK }],
    },
    Mode: { Replicated: { Replicas: 0 } },
    EndpointSpec: { Mode: 'dnsrr' },
  } as unknown as Docker.CreateServiceOptions);
}

async function dockerCallsByOp(activator: RunningActivator): Promise<Record<string, number>> {
  const text = await (await activator.adminFetch('/metrics')).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^activator_docker_api_calls_total\{[^}]*op="([^"]+)"[^}]*\}\s+(\S+)/gm)) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  return out;
}

async function allAsleep(activator: RunningActivator, names: readonly string[]): Promise<void> {
  const want = new Set(names);
  await waitFor(`activator sees ${names.length} apps asleep`, async () => {
    const apps = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; replicas: number | null; state: string }>;
    return apps.filter((a) => want.has(a.service) && a.replicas === 0 && a.state !== 'waking').length === want.size;
  }, 60_000, 100);
}

async function stopAll(names: readonly string[]): Promise<void> {
  await mapLimit(names, 8, (name) => stopFully(name, 60_000));
}

export async function mondayMorning(opts: MondayMorningOptions): Promise<MondayMorningResult> {
  const run = runId('benchmonday');
  const names = Array.from({ length: opts.apps }, (_, i) => `${run}-a${String(i).padStart(4, '0')}`);
  const hostOf = (i: number) => `a${i}.${run}.monday.local`;
  // Every (apps / wakes)-th app wakes: spread over the registry, not its first entries.
  const step = Math.max(1, Math.floor(opts.apps / opts.wakes));
  const woken = Array.from({ length: opts.wakes }, (_, k) => k * step);
  const created: string[] = [];
  const removeAll = onCleanup(async () => {
    const t = performance.now();
    await mapLimit(created, CONCURRENCY, (name) => removeService(name));
    opts.log(`  mondayMorning: removed ${created.length} services in ${Math.round(performance.now() - t)} ms`);
  });
  try {
    let t = performance.now();
    await mapLimit(names, CONCURRENCY, async (name, i) => {
      await createSleepingApp(name, run, hostOf(i));
      created.push(name);
    });
    const createMs = performance.now() - t;
    opts.log(`  mondayMorning: created ${names.length} services at 0 replicas in ${Math.round(createMs)} ms`);

    const prober = await startProber(run);
    t = performance.now();
    const activator = await startActivator({
      name: `${run}-activator`,
      run,
      image: activatorImage(),
      env: { ACTIVATOR_WAKE_TIMEOUT: '120s', ACTIVATOR_RESYNC_INTERVAL: '10m', ACTIVATOR_IDLE_TIMEOUT: '1h', ACTIVATOR_LOG_LEVEL: 'warn' },
    });
    const stopActivator = onCleanup(() => activator.stop());
    const client = new Agent({ connections: opts.wakes * 2, pipelining: 1 });
    try {
      await waitFor(`activator lists ${opts.apps} apps`, async () => ((await (await activator.adminFetch('/api/apps')).json()) as unknown[]).length === opts.apps, 120_000, 250);
      const discoveryMs = performance.now() - t;
      const wokenNames = woken.map((i) => names[i] as string);

      // Floors: each app alone.
      const floorMs: number[] = [];
      for (const [k, name] of wokenNames.entries()) {
        await sleep(300);
        const res = await fetch(`${prober.url}/measure?service=${encodeURIComponent(name)}&timeoutMs=60000&intervalMs=5`, { signal: AbortSignal.timeout(90_000) });
        const body = (await res.json()) as { floorMs: number; error?: string };
        if (!res.ok) throw new Error(`prober: ${body.error ?? res.status}`);
        floorMs.push(body.floorMs);
        await stopFully(name, 60_000);
        if ((k + 1) % 10 === 0) opts.log(`  mondayMorning: floor ${k + 1}/${wokenNames.length} (last ${body.floorMs.toFixed(0)} ms)`);
      }

      // Direct: all W scaled at once by the prober (no activator): scale call → first 2xx of each.
      await sleep(1000);
      const many = await fetch(`${prober.url}/measure-many?services=${wokenNames.map(encodeURIComponent).join(',')}&timeoutMs=150000&intervalMs=50`, { signal: AbortSignal.timeout(180_000) });
      const wave = (await many.json()) as { floorMs: number[]; runningMs: number[]; scaleCallsMs: number; error?: string };
      if (!many.ok) throw new Error(`prober: ${wave.error ?? many.status}`);
      const directMs = wave.floorMs;
      const directRunningMs = wave.runningMs;
      opts.log(`  mondayMorning: direct wave: ${wokenNames.length} scaled at once (scale calls ${wave.scaleCallsMs.toFixed(0)} ms), first 2xx p50 ${percentile(directMs, 50).toFixed(0)} p95 ${percentile(directMs, 95).toFixed(0)} ms (running p50 ${percentile(directRunningMs, 50).toFixed(0)} ms)`);
      await stopAll(wokenNames);

      // The activator's wave.
      await allAsleep(activator, wokenNames);
      await sleep(1000);
      const callsBefore = await dockerCallsByOp(activator);
      const statuses: Record<string, number> = {};
      const activatorMs: number[] = new Array<number>(wokenNames.length).fill(Number.NaN);
      const w0 = performance.now();
      await Promise.all(woken.map(async (i, k) => {
        const s = performance.now();
        try {
          const res = await request(`${activator.url}/monday?app=${i}`, { headers: { host: hostOf(i) }, dispatcher: client, headersTimeout: 150_000, bodyTimeout: 150_000 });
          activatorMs[k] = performance.now() - s;
          await res.body.text();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          statuses[code] = (statuses[code] ?? 0) + 1;
        }
      }));
      const waveMs = performance.now() - w0;
      await sleep(500);
      const callsAfter = await dockerCallsByOp(activator);
      const byOp: Record<string, number> = {};
      for (const [op, n] of Object.entries(callsAfter)) if (n - (callsBefore[op] ?? 0) > 0) byOp[op] = n - (callsBefore[op] ?? 0);
      const dockerCalls = Object.values(byOp).reduce((a, b) => a + b, 0);
      const overheadMs = activatorMs.map((a, k) => a - (floorMs[k] as number));
      const okMs = activatorMs.filter((v) => Number.isFinite(v));
      const okOverhead = overheadMs.filter((v) => Number.isFinite(v));
      opts.log(`  mondayMorning: activator wave: ${statuses['200'] ?? 0}/${wokenNames.length} ok in ${waveMs.toFixed(0)} ms, overhead p50 ${percentile(okOverhead, 50).toFixed(0)} p95 ${percentile(okOverhead, 95).toFixed(0)} ms, ${dockerCalls} Docker calls ${JSON.stringify(byOp)}`);
      await stopAll(wokenNames);
      return {
        apps: opts.apps,
        wakes: opts.wakes,
        ok: statuses['200'] ?? 0,
        overheadP50Ms: round(percentile(okOverhead, 50)),
        overheadP95Ms: round(percentile(okOverhead, 95)),
        dockerCalls,
        longestWaitMs: round(Math.max(...okMs)),
        floorP50Ms: round(percentile(floorMs, 50)),
        floorP95Ms: round(percentile(floorMs, 95)),
        activatorP50Ms: round(percentile(okMs, 50)),
        activatorP95Ms: round(percentile(okMs, 95)),
        directConcurrentP50Ms: round(percentile(directMs, 50)),
        directConcurrentP95Ms: round(percentile(directMs, 95)),
        directConcurrentMaxMs: round(Math.max(...directMs)),
        overVsConcurrentFloorP50Ms: round(percentile(okMs, 50) - percentile(directMs, 50)),
        overVsConcurrentFloorP95Ms: round(percentile(okMs, 95) - percentile(directMs, 95)),
        longestOverDirectLongestMs: round(Math.max(...okMs) - Math.max(...directMs)),
        directConcurrentRunningP50Ms: round(percentile(directRunningMs, 50)),
        dockerCallsByOp: byOp,
        discoveryMs: Math.round(discoveryMs),
        createMs: Math.round(createMs),
        statuses,
        samples: { floorMs: floorMs.map((v) => round(v)), activatorMs: activatorMs.map((v) => round(v)), overheadMs: overheadMs.map((v) => round(v)), directMs: directMs.map((v) => round(v)), directRunningMs: directRunningMs.map((v) => round(v)) },
        sablier: 'not run: Sablier could not be built here (see peer)',
      };
    } finally {
      await client.close();
      await stopActivator();
      await prober.stop();
    }
  } finally {
    await removeAll();
  }
}
