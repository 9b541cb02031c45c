/**
 * Burst: N concurrent requests (default 1,000) to a sleeping app through the activator (a Swarm
 * service; the client on the host). Scale-ups are counted from Docker's side (service update
 * events whose replicas go up); RSS is the activator container's process (VmRSS from /proc: the
 * engine runs on this host) before and right after, and again once idle.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'undici';
import { startActivator } from '../test/helpers/activator.js';
import { createApp, runId } from '../test/helpers/swarm.js';
import { onCleanup, rssOf } from './lib/proc.js';
import { percentile, round, sleep } from './lib/stats.js';
import { activatorImage, containerOf, countScaleUps } from './lib/swarm.js';

export interface BurstOptions {
  requests: number;
  /** Serve a few hundred requests (another app) before the baseline; default true. */
  warmup?: boolean;
  /** Idle time after the burst before the "settled" reading (V8 shrinks the heap when idle). */
  settleMs?: number;
  log: (line: string) => void;
  /**
   * Where the client connects: 'published' (127.0.0.1 and the host-mode published port, through
   * Docker's userland proxy, one docker-proxy process per port) or 'gateway' (the activator
   * container's docker_gwbridge address, no docker-proxy: as Traefik reaches it over the network).
   * docker-proxy holds two descriptors per connection under dockerd's open-file limit, and stops
   * (closing every connection) when an accept fails: 10,000 connections pass a 20,000 limit.
   */
  via?: 'published' | 'gateway';
  /**
   * The app's STARTUP_DELAY_MS: the wake lasts at least this long, so every request is held at
   * once and RSS is read while they are (the "held" reading). 0 (default): no held reading.
   */
  holdMs?: number;
}

export interface BurstResult {
  requests: number;
  ok: number;
  scaleUps: number;
  rssGrowthMb: number;
  /** All update events of the app's service during the burst (a scale-up writes replicas and state labels in one). */
  updateEvents: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  /** VmHWM after the burst minus VmRSS before: the peak while requests were held. */
  peakGrowthMb: number;
  firstAnswerMs: number;
  lastAnswerMs: number;
  p50AnswerMs: number;
  statuses: Record<string, number>;
  /** RSS after settleMs of idleness following the burst, minus before. */
  rssSettledGrowthMb: number;
  /** The activator's own process metrics (MB): V8 heap used/total, external, RSS. */
  memory: Partial<Record<'before' | 'held' | 'after' | 'settled', Record<string, number>>>;
  warmedUp: boolean;
  /** Open-file limits (soft) of the bench's client and of the activator's process. */
  nofile: { client: number; activator: number };
  via: 'published' | 'gateway';
  /** With holdMs: activator_held_requests when RSS was read while held, and that RSS minus before. */
  heldCount: number | null;
  rssHeldGrowthMb: number | null;
  /** ms from the burst's start until all requests were held (or the reading was taken). */
  heldAtMs: number | null;
  /** via 'published': the port's docker-proxy, its open-file limit, and whether it outlived the burst. */
  dockerProxy: { pid: number; nofile: number; aliveAfter: boolean } | null;
}

/** The docker-proxy process serving a host-mode published port on this host, if any. */
export function dockerProxyOf(port: number): number | undefined {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'docker-proxy') continue;
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const at = args.indexOf('-host-port');
      if (at >= 0 && Number(args[at + 1]) === port) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The soft "Max open files" of a process (/proc/PID/limits). */
export function nofileOf(pid: number | 'self'): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[1] ?? Number.NaN);
}

/** process_resident_memory_bytes and the nodejs_heap/external gauges from the admin /metrics, in MB. */
async function memoryMetrics(adminUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const pick = (name: string, labels = '') => {
    const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')}\\s+(\\S+)`, 'm').exec(text);
    return m ? round(Number(m[1]) / 1048576) : Number.NaN;
  };
  return {
    rss: pick('process_resident_memory_bytes'),
    heapUsed: pick('nodejs_heap_size_used_bytes'),
    heapTotal: pick('nodejs_heap_size_total_bytes'),
    external: pick('nodejs_external_memory_bytes'),
    newSpace: pick('nodejs_heap_space_size_total_bytes', '{space="new"}'),
    oldSpace: pick('nodejs_heap_space_size_total_bytes', '{space="old"}'),
  };
}

export async function burst(opts: BurstOptions): Promise<BurstResult> {
  const run = runId('benchburst');
  const activator = await startActivator({ name: `${run}-activator`, run, image: activatorImage(), env: { ACTIVATOR_MAX_HELD_PER_APP: String(Math.max(1000, opts.requests)), ACTIVATOR_MAX_HELD: String(Math.max(10_000, opts.requests)), ACTIVATOR_WAKE_TIMEOUT: '60s' } });
  const stopActivator = onCleanup(() => activator.stop());
  const app = await createApp({ name: `${run}-app`, run, healthIntervalMs: 0, env: opts.holdMs ? { STARTUP_DELAY_MS: String(opts.holdMs) } : {} });
  const removeApp = onCleanup(() => app.remove());
  const client = new Agent({ connections: opts.requests + 16, pipelining: 1, keepAliveTimeout: 1000 });
  try {
    await activator.waitForApp(app.name);
    const container = await containerOf(activator.name).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}\nactivator logs:\n${(await activator.logs()).split('\n').slice(-40).join('\n')}`, { cause: err });
    });
    const via = opts.via ?? 'published';
    if (via === 'gateway' && !container.gwIp) throw new Error('the activator container has no docker_gwbridge address');
    const base = via === 'gateway' ? `http://${container.gwIp}:8080` : activator.url;
    const proxyPid = via === 'published' ? dockerProxyOf(activator.port) : undefined;
    const proxyNofile = proxyPid ? nofileOf(proxyPid) : Number.NaN;
    // Warm-up on another app (one wake, then some proxied requests), so the baseline already has
    // what any activator that has served traffic has (JIT code, undici's parser, pools): the growth
    // measured is the burst's, not the first request's.
    const warm = await createApp({ name: `${run}-warm`, run, healthIntervalMs: 0 });
    const removeWarm = onCleanup(() => warm.remove());
    await activator.waitForApp(warm.name);
    for (let round = 0; round < (opts.warmup === false ? 0 : 6); round++) {
      await Promise.all(Array.from({ length: 50 }, async (_, i) => (await request(`${base}/warm/${i}`, { headers: { host: warm.host }, dispatcher: client, headersTimeout: 60_000 })).body.text()));
    }
    await removeWarm();
    await sleep(2000); // let start-up garbage settle before the baseline
    const before = rssOf(container.pid);
    const memBefore = await memoryMetrics(activator.adminUrl);
    const counter = await countScaleUps(app.name);

    const t0 = performance.now();
    const times: number[] = [];
    const statuses: Record<string, number> = {};
    const all = Promise.all(
      Array.from({ length: opts.requests }, async (_, i) => {
        try {
          const res = await request(`${base}/burst/${i}`, { headers: { host: app.host }, dispatcher: client, headersTimeout: 90_000, bodyTimeout: 90_000 });
          await res.body.text();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          statuses[code] = (statuses[code] ?? 0) + 1;
        }
        times.push(performance.now() - t0);
      }),
    );
    // While held: wait until the activator holds every request (or the first answer, or most of
    // the app's start-up delay), then read RSS and the heap.
    let held: { count: number; rssMb: number; atMs: number; memory: Record<string, number> } | undefined;
    if (opts.holdMs) {
      const until = t0 + opts.holdMs * 0.8;
      let count = 0;
      while (times.length === 0 && performance.now() < until) {
        count = (await activator.metric('activator_held_requests')) ?? 0;
        if (count >= opts.requests) break;
        await sleep(200);
      }
      const atMs = performance.now() - t0;
      held = { count, rssMb: rssOf(container.pid).rssMb, atMs, memory: await memoryMetrics(activator.adminUrl) };
      opts.log(`  burst: ${count} held after ${Math.round(atMs)} ms, RSS ${held.rssMb.toFixed(1)} MB (${(((held.rssMb - before.rssMb) * 1024) / Math.max(1, count)).toFixed(1)} KB per held request)`);
    }
    await all;
    const proxyAlive = proxyPid !== undefined && dockerProxyOf(activator.port) === proxyPid;
    if (proxyPid !== undefined && !proxyAlive) opts.log(`  burst: the published port's docker-proxy (pid ${proxyPid}, open-file limit ${proxyNofile}) is gone`);
    await sleep(500); // the last update event
    const after = rssOf(container.pid);
    const memAfter = await memoryMetrics(activator.adminUrl);
    await sleep(opts.settleMs ?? 10_000);
    const settled = rssOf(container.pid);
    const memSettled = await memoryMetrics(activator.adminUrl);
    counter.stop();
    const ok = statuses['200'] ?? 0;
    opts.log(`  burst: ${ok}/${opts.requests} ok (${JSON.stringify(statuses)}), ${counter.scaleUps()} scale-up(s), RSS ${before.rssMb.toFixed(1)} → ${after.rssMb.toFixed(1)} MB (peak ${after.peakMb.toFixed(1)} MB)`);
    return {
      requests: opts.requests,
      ok,
      scaleUps: counter.scaleUps(),
      rssGrowthMb: round(after.rssMb - before.rssMb),
      updateEvents: counter.updates(),
      rssBeforeMb: round(before.rssMb),
      rssAfterMb: round(after.rssMb),
      peakGrowthMb: round(after.peakMb - before.rssMb),
      firstAnswerMs: round(Math.min(...times)),
      lastAnswerMs: round(Math.max(...times)),
      p50AnswerMs: round(percentile(times, 50)),
      statuses,
      rssSettledGrowthMb: round(settled.rssMb - before.rssMb),
      memory: { before: memBefore, ...(held ? { held: held.memory } : {}), after: memAfter, settled: memSettled },
      warmedUp: opts.warmup !== false,
      nofile: { client: nofileOf('self'), activator: nofileOf(container.pid) },
      via,
      heldCount: held ? held.count : null,
      rssHeldGrowthMb: held ? round(held.rssMb - before.rssMb) : null,
      heldAtMs: held ? Math.round(held.atMs) : null,
      dockerProxy: proxyPid !== undefined ? { pid: proxyPid, nofile: proxyNofile, aliveAfter: proxyAlive } : null,
    };
  } finally {
    await client.close();
    await removeApp();
    await stopActivator();
  }
}
