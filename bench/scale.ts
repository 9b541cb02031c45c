/**
 * Scale: N labelled services at 0 replicas (default 1,000), then a fresh activator (a Swarm service
 * selecting only them). discoveryMs: the activator container's start (State.StartedAt) → its
 * "activator listening" log line, which it writes after the first full sync (the admin /api/apps
 * count is checked too). rssMb: the container's process VmRSS after discovery. unknownHostRps: wrk
 * (1 thread, 50 connections) with a Host nobody claims, at the container's docker_gwbridge address
 * (no docker-proxy in the way, like Traefik reaching it over the network), against a bare fastify
 * 404 app run the same way in the same image (the baseline), rounds interleaved.
 */
import { resolve } from 'node:path';
import type Docker from 'dockerode';
import { DockerodeSwarm } from '../src/swarm/dockerode-swarm.js';
import { AppRegistry } from '../src/discovery/app-registry.js';
import { createLogger } from '../src/log.js';
import { startActivator } from '../test/helpers/activator.js';
import { LABELS } from '../src/labels.js';
import { DOCKER_HOST, SA_NETWORK, docker, freePort, removeService, runId, serviceLogs, waitFor } from '../test/helpers/swarm.js';
import { freeLoopbackPort, onCleanup, rssOf, startChild, waitForPort } from './lib/proc.js';
import { median, round } from './lib/stats.js';
import { activatorImage, containerLogLines, containerOf, mapLimit } from './lib/swarm.js';
import { wrk } from './lib/wrk.js';

export interface ScaleOptions {
  services: number;
  durationS: number;
  rounds?: number;
  outDir: string;
  log: (line: string) => void;
}

export interface ScaleResult {
  services: number;
  discoveryMs: number;
  rssMb: number;
  unknownHostRps: number;
  bare404Rps: number;
  ratioVsBare404: number;
  /** Bare fastify 404 as a plain process on loopback (the issue's ≈57k calibration figure). */
  bare404LoopbackRps: number;
  rssAfterLoadMb: number;
  dockerCallsDuringLoad: number;
  /** Docker's own latency: one list of the N services with the activator's label filters. */
  dockerListMs: number;
  /** Our registry's first full sync (list + parse + index) in the bench process. */
  registrySyncMs: number;
  /** createService of the activator → /readyz answers (includes Swarm scheduling and container start). */
  createToReadyMs: number;
  createMs: number;
  rounds: Array<{ activator: number; bare404: number }>;
}

const CONCURRENCY = 16;
const NOBODY = 'nobody.invalid';

/**
 * A labelled app at 0 replicas on the shared network, like test/helpers' createApp but with
 * endpoint mode dnsrr: a service in the default vip mode takes an address of the network's subnet
 * even at 0 replicas, and 1,000 of them exhaust the test network's /24 (tasks then sit in `new`).
 * The activator and Traefik (lbswarm=false) use task addresses, never the VIP.
 */
async function createSleepingService(name: string, run: string, host: string): Promise<void> {
  await docker.createService({
    Name: name,
    Labels: { 'sa.test': '1', 'sa.run': run, [LABELS.enable]: 'true', [LABELS.hosts]: host, [LABELS.port]: '80' },
    TaskTemplate: {
      ContainerSpec: { Image: 'sa/sample-app:dev', StopGracePeriod: 2e9 },
      RestartPolicy: { Condition: 'any', Delay: 500e6 },
      Networks: [{ Target: SA_NETWORK }],
    },
    Mode: { Replicated: { Replicas: 0 } },
    EndpointSpec: { Mode: 'dnsrr' },
  } as unknown as Docker.CreateServiceOptions);
}

async function startBare404(run: string): Promise<{ name: string; stop: () => Promise<void> }> {
  const name = `${run}-bare404`;
  await removeService(name);
  await docker.createService({
    Name: name,
    Labels: { 'sa.test': '1', 'sa.bench': run },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'swarm-activator:dev',
        Command: ['/usr/bin/node', '/app/bare-404.mjs'],
        Env: ['PORT=8080', 'NODE_ENV=production'],
        Mounts: [{ Type: 'bind', Source: resolve('bench/scale/bare-404.mjs'), Target: '/app/bare-404.mjs', ReadOnly: true }],
        StopGracePeriod: 1e9,
      },
      RestartPolicy: { Condition: 'none' },
      Networks: [{ Target: SA_NETWORK }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    // Published like the activator's ports, so it is wired the same way (docker_gwbridge).
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: await freePort(), PublishMode: 'host' }] },
  } as unknown as Docker.CreateServiceOptions);
  const stop = onCleanup(() => removeService(name));
  return { name, stop };
}

export async function scale(opts: ScaleOptions): Promise<ScaleResult> {
  const run = runId('benchscale');
  const names = Array.from({ length: opts.services }, (_, i) => `${run}-s${String(i).padStart(4, '0')}`);
  const created: string[] = [];
  const removeAll = onCleanup(async () => {
    const t = performance.now();
    await mapLimit(created, CONCURRENCY, (name) => removeService(name));
    opts.log(`  scale: removed ${created.length} services in ${Math.round(performance.now() - t)} ms`);
  });
  try {
    let t = performance.now();
    await mapLimit(names, CONCURRENCY, async (name, i) => {
      await createSleepingService(name, run, `s${i}.${run}.scale.local`);
      created.push(name);
    });
    const createMs = performance.now() - t;
    opts.log(`  scale: created ${names.length} services at 0 replicas in ${Math.round(createMs)} ms`);

    const filters = ['swarm-activator.enable=true', `sa.run=${run}`];
    const listTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      t = performance.now();
      const list = await docker.listServices({ filters: { label: filters } });
      listTimes.push(performance.now() - t);
      if (list.length !== opts.services) throw new Error(`list found ${list.length} of ${opts.services} services`);
    }
    const quiet = createLogger('silent');
    const registry = new AppRegistry({
      swarm: new DockerodeSwarm({ dockerHost: DOCKER_HOST, log: quiet }),
      defaults: { strategy: 'blocking', wakeTimeoutMs: 60_000, idleTimeoutMs: 1_800_000, minAwakeMs: 60_000, network: SA_NETWORK },
      selector: { key: 'sa.run', value: run },
      resyncIntervalMs: 3_600_000,
      log: quiet,
    });
    t = performance.now();
    await registry.resync();
    const registrySyncMs = performance.now() - t;
    if (registry.all().length !== opts.services) throw new Error(`registry found ${registry.all().length} of ${opts.services}`);

    // The activator: a fresh Swarm service selecting this run's services only.
    t = performance.now();
    const activator = await startActivator({ name: `${run}-activator`, run, image: activatorImage(), env: { ACTIVATOR_LOG_LEVEL: 'info', ACTIVATOR_RESYNC_INTERVAL: '10m' } });
    const createToReadyMs = performance.now() - t;
    const stopActivator = onCleanup(() => activator.stop());
    const bare = await startBare404(run);
    try {
      const container = await containerOf(activator.name);
      const startedAt = Date.parse(((await docker.getContainer(container.id).inspect()) as { State: { StartedAt: string } }).State.StartedAt);
      const lines = await containerLogLines(container.id);
      const listening = lines.find((l) => l.msg === 'activator listening');
      if (!listening) throw new Error(`no "activator listening" line in the activator container's ${lines.length} log lines:\n${lines.slice(-20).map((l) => JSON.stringify(l)).join('\n')}`);
      const discoveryMs = Date.parse(String(listening.time)) - startedAt;
      const apps = (await (await activator.adminFetch('/api/apps')).json()) as unknown[];
      if (apps.length !== opts.services || listening.apps !== opts.services) throw new Error(`activator lists ${apps.length} apps (log says ${String(listening.apps)}), expected ${opts.services}`);
      const rssMb = rssOf(container.pid).rssMb;
      opts.log(`  scale: discovery ${discoveryMs} ms after container start (create→ready ${Math.round(createToReadyMs)} ms), RSS ${rssMb.toFixed(1)} MB`);

      await waitFor('bare 404 baseline', async () => {
        const c = await containerOf(bare.name).catch(() => undefined);
        return c?.gwIp ? (await fetch(`http://${c.gwIp}:8080/`).catch(() => undefined))?.status === 404 : false;
      }, 60_000, 100).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\nbaseline logs:\n${await serviceLogs(bare.name)}`);
      });
      const bareIp = (await containerOf(bare.name)).gwIp;
      if (!container.gwIp || !bareIp) throw new Error('no docker_gwbridge address for the activator or the baseline container');
      const urls = { activator: `http://${container.gwIp}:8080/`, bare404: `http://${bareIp}:8080/` };

      const callsBefore = (await activator.metric('activator_docker_api_calls_total')) ?? 0;
      const unknownBefore = (await activator.metric('activator_unknown_host_requests_total')) ?? 0;
      const rounds: Array<{ activator: number; bare404: number }> = [];
      let total = 0;
      for (let r = 0; r < (opts.rounds ?? 3); r++) {
        const row = { activator: 0, bare404: 0 };
        for (const k of ['activator', 'bare404'] as const) {
          await wrk({ url: urls[k], host: NOBODY, connections: 50, durationS: 1 });
          const res = await wrk({ url: urls[k], host: NOBODY, connections: 50, durationS: opts.durationS });
          if (res.socketErrors > 0) throw new Error(`${k}: ${res.socketErrors} socket errors`);
          if (res.non2xx !== res.requests) throw new Error(`${k}: ${res.requests - res.non2xx} answers were not 404s`);
          row[k] = res.rps;
          if (k === 'activator') total += res.requests;
        }
        rounds.push(row);
        opts.log(`  scale round ${r + 1}: unknown host via activator ${Math.round(row.activator)} req/s, bare fastify 404 ${Math.round(row.bare404)} req/s`);
      }
      const callsAfter = (await activator.metric('activator_docker_api_calls_total')) ?? 0;
      const unknownAfter = (await activator.metric('activator_unknown_host_requests_total')) ?? 0;
      if (unknownAfter - unknownBefore < total) throw new Error(`activator_unknown_host_requests_total grew by ${unknownAfter - unknownBefore}, expected ≥ ${total}`);
      const rssAfterLoadMb = rssOf(container.pid).rssMb;

      // Calibration: the same bare 404 app as a plain process on loopback.
      const port = await freeLoopbackPort();
      const plain = startChild(process.execPath, ['bench/scale/bare-404.mjs'], { env: { PORT: String(port), HOST: '127.0.0.1' }, logFile: `${opts.outDir}/bare-404.log` });
      let bare404LoopbackRps: number;
      try {
        await waitForPort(port, 15_000, '127.0.0.1', plain);
        await wrk({ url: `http://127.0.0.1:${port}/`, host: NOBODY, connections: 50, durationS: 1 });
        bare404LoopbackRps = (await wrk({ url: `http://127.0.0.1:${port}/`, host: NOBODY, connections: 50, durationS: opts.durationS })).rps;
      } finally {
        await plain.stop();
      }

      const act = median(rounds.map((r) => r.activator));
      const base = median(rounds.map((r) => r.bare404));
      return {
        services: opts.services,
        discoveryMs,
        rssMb: round(rssMb),
        unknownHostRps: Math.round(act),
        bare404Rps: Math.round(base),
        ratioVsBare404: round(act / base, 3),
        bare404LoopbackRps: Math.round(bare404LoopbackRps),
        rssAfterLoadMb: round(rssAfterLoadMb),
        dockerCallsDuringLoad: callsAfter - callsBefore,
        dockerListMs: round(median(listTimes)),
        registrySyncMs: round(registrySyncMs),
        createToReadyMs: Math.round(createToReadyMs),
        createMs: Math.round(createMs),
        rounds: rounds.map((r) => ({ activator: Math.round(r.activator), bare404: Math.round(r.bare404) })),
      };
    } finally {
      await bare.stop();
      await stopActivator();
    }
  } finally {
    await removeAll();
  }
}
