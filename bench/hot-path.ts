/**
 * Hot path: the same origin and the same load tool (wrk, 1 thread, 50 connections) four ways:
 *   (a) direct to the origin, (b) a ~20-line undici Pool proxy (the Node ceiling),
 *   (c) Debian nginx as a keep-alive reverse proxy (the native ceiling),
 *   (d) the activator's real HTTP stack (bench/hot-path/activator-proxy.ts → buildProxyApp).
 * Everything runs on loopback as plain processes. Rounds are interleaved (a b c d, a b c d, ...)
 * so drift on the shared machine hits every target alike; each figure is the median over rounds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { formatProfile, summariseProfile } from './lib/cpuprofile.js';
import { cpuMsOf, freeLoopbackPort, startChild, waitForPort, type Child } from './lib/proc.js';
import { median, round } from './lib/stats.js';
import { wrk } from './lib/wrk.js';

export interface HotPathOptions {
  outDir: string;
  durationS: number;
  warmupS: number;
  rounds: number;
  c1DurationS: number;
  /** Pin wrk to CPU 0 and the servers to CPU 1 (taskset). */
  pin: boolean;
  /** Run the activator under --cpu-prof and print a summary of its profile. */
  profile: boolean;
  /** Run the activator process from TypeScript through tsx instead of tsc output (slower: esbuild's keepNames wrappers). */
  tsx: boolean;
  log: (line: string) => void;
}

export interface HotPathResult {
  directRps: number;
  nodeFloorRps: number;
  nginxRps: number;
  activatorRps: number;
  ratioVsNode: number;
  ratioVsNginx: number;
  p50AddedMsC1: number;
  /** Reference: plain fastify + @fastify/reply-from (defaults, no hooks), same origin and load. */
  fastifyReplyFromRps: number;
  c1P50Ms: Record<Target, number>;
  /** CPU time (user + system, from /proc) of each proxy per request under wrk -c50, median over rounds: robust to the machine's noise. */
  cpuUsPerRequest: Record<CpuTarget, number>;
  /** activator / undici floor, by CPU per request (1.0 = the same cost). */
  cpuRatioVsNode: number;
  rounds: Array<Record<Target, number>>;
  pinned: boolean;
  /** How the activator process ran: tsc output (as in production) or tsx. */
  activatorRuntime: 'tsc' | 'tsx';
  profile?: string;
}

type Target = 'direct' | 'nodeFloor' | 'nginx' | 'fastifyReplyFrom' | 'activator';
/** fastifyReplyFrom is a reference only (plain fastify + reply-from defaults): not one of the issue's four. */
const TARGETS: Target[] = ['direct', 'nodeFloor', 'nginx', 'fastifyReplyFrom', 'activator'];
type CpuTarget = 'nodeFloor' | 'fastifyReplyFrom' | 'activator';
const HOST = 'bench.local';
const NODE = process.execPath;

function nginxConf(dir: string, port: number, originPort: number): string {
  return `# Written by bench/hot-path.ts: a keep-alive reverse proxy, one worker (like one node process).
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`;
}

/** tsc of src/ + bench/hot-path/activator-proxy.ts into build/bench/js (bench/tsconfig.json). */
function compileActivatorProxy(log: (line: string) => void): string {
  const out = 'build/bench/js/bench/hot-path/activator-proxy.js';
  rmSync('build/bench/js', { recursive: true, force: true });
  const res = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'bench/tsconfig.json'], { encoding: 'utf8', timeout: 120_000 });
  if (!existsSync(out)) throw new Error(`tsc -p bench/tsconfig.json emitted nothing:\n${res.stdout}${res.stderr}`);
  if (res.status !== 0) log(`  hotPath: tsc reported errors (output used anyway):\n${res.stdout.split('\n').slice(0, 10).join('\n')}`);
  return out;
}

export async function hotPath(opts: HotPathOptions): Promise<HotPathResult> {
  const dir = join(opts.outDir, 'hot-path');
  mkdirSync(dir, { recursive: true });
  const profDir = join(dir, 'profiles');
  const serverCpus = opts.pin ? '1' : undefined;
  const wrkCpus = opts.pin ? '0' : undefined;
  const [originPort, nodePort, nginxPort, fastifyPort, activatorPort] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];
  const children: Child[] = [];
  try {
    const origin = startChild(NODE, ['bench/hot-path/origin.mjs'], { env: { PORT: String(originPort) }, cpus: serverCpus, logFile: join(dir, 'origin.log') });
    children.push(origin);
    await waitForPort(originPort, 15_000, '127.0.0.1', origin);

    const nodeProxy = startChild(NODE, ['bench/hot-path/undici-proxy.mjs'], { env: { PORT: String(nodePort), ORIGIN_PORT: String(originPort) }, cpus: serverCpus, logFile: join(dir, 'undici-proxy.log') });
    children.push(nodeProxy);

    const fastifyProxy = startChild(NODE, ['bench/hot-path/fastify-proxy.mjs'], { env: { PORT: String(fastifyPort), ORIGIN_PORT: String(originPort) }, cpus: serverCpus, logFile: join(dir, 'fastify-proxy.log') });
    children.push(fastifyProxy);

    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, nginxPort, originPort));
    const nginx = startChild('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx-error.log')], { cpus: serverCpus, logFile: join(dir, 'nginx.out') });
    children.push(nginx);

    const entry = opts.tsx ? ['--import', 'tsx', 'bench/hot-path/activator-proxy.ts'] : [compileActivatorProxy(opts.log)];
    const startActivatorProxy = (port: number, profile: boolean) =>
      startChild(NODE, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...entry], {
        env: { PORT: String(port), ORIGIN_PORT: String(originPort), BENCH_HOST: HOST, ACTIVATOR_LOG_LEVEL: 'info' },
        cpus: serverCpus,
        logFile: join(dir, profile ? 'activator-profiled.log' : 'activator.log'),
      });
    const activator = startActivatorProxy(activatorPort, false);
    children.push(activator);
    await Promise.all([waitForPort(nodePort, 15_000, '127.0.0.1', nodeProxy), waitForPort(fastifyPort, 15_000, '127.0.0.1', fastifyProxy), waitForPort(nginxPort, 15_000, '127.0.0.1', nginx), waitForPort(activatorPort, 30_000, '127.0.0.1', activator)]);

    const urls: Record<Target, string> = {
      direct: `http://127.0.0.1:${originPort}/`,
      nodeFloor: `http://127.0.0.1:${nodePort}/`,
      nginx: `http://127.0.0.1:${nginxPort}/`,
      fastifyReplyFrom: `http://127.0.0.1:${fastifyPort}/`,
      activator: `http://127.0.0.1:${activatorPort}/`,
    };
    for (const t of TARGETS) {
      const res = await request(urls[t], { headers: { host: HOST } });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.startsWith('hello from the origin')) throw new Error(`hot path: ${t} answered ${res.statusCode} ${text.slice(0, 200)}`);
    }

    const cpuPids: Record<CpuTarget, number> = { nodeFloor: nodeProxy.pid, fastifyReplyFrom: fastifyProxy.pid, activator: activator.pid };
    const cpuRounds: Record<CpuTarget, number[]> = { nodeFloor: [], fastifyReplyFrom: [], activator: [] };
    const rounds: Array<Record<Target, number>> = [];
    for (let r = 0; r < opts.rounds; r++) {
      const row = {} as Record<Target, number>;
      for (const t of TARGETS) {
        await wrk({ url: urls[t], host: HOST, connections: 50, durationS: opts.warmupS, cpus: wrkCpus });
        const pid = t in cpuPids ? cpuPids[t as CpuTarget] : undefined;
        const cpuBefore = pid === undefined ? 0 : cpuMsOf(pid);
        const res = await wrk({ url: urls[t], host: HOST, connections: 50, durationS: opts.durationS, cpus: wrkCpus });
        if (res.non2xx > 0 || res.socketErrors > 0) throw new Error(`hot path: ${t} had ${res.non2xx} non-2xx and ${res.socketErrors} socket errors`);
        if (pid !== undefined && res.requests > 0) cpuRounds[t as CpuTarget].push(((cpuMsOf(pid) - cpuBefore) * 1000) / res.requests);
        row[t] = res.rps;
      }
      rounds.push(row);
      opts.log(`  hotPath round ${r + 1}/${opts.rounds}: ${TARGETS.map((t) => `${t} ${Math.round(row[t])}`).join(', ')} req/s`);
    }

    const c1: Record<Target, number[]> = { direct: [], nodeFloor: [], nginx: [], fastifyReplyFrom: [], activator: [] };
    for (let r = 0; r < opts.rounds; r++) {
      for (const t of TARGETS) {
        const res = await wrk({ url: urls[t], host: HOST, connections: 1, durationS: opts.c1DurationS, cpus: wrkCpus });
        c1[t].push(res.p50Ms);
      }
    }
    const rps = (t: Target) => median(rounds.map((row) => row[t]));
    const c1p50 = (t: Target) => median(c1[t]);
    // Per-round deltas (same minute of noise), then their median.
    const added = median(c1.activator.map((a, i) => a - (c1.direct[i] as number)));
    const result: HotPathResult = {
      directRps: Math.round(rps('direct')),
      nodeFloorRps: Math.round(rps('nodeFloor')),
      nginxRps: Math.round(rps('nginx')),
      activatorRps: Math.round(rps('activator')),
      ratioVsNode: round(rps('activator') / rps('nodeFloor'), 3),
      ratioVsNginx: round(rps('activator') / rps('nginx'), 3),
      p50AddedMsC1: round(added, 3),
      fastifyReplyFromRps: Math.round(rps('fastifyReplyFrom')),
      cpuUsPerRequest: {
        nodeFloor: round(median(cpuRounds.nodeFloor), 1),
        fastifyReplyFrom: round(median(cpuRounds.fastifyReplyFrom), 1),
        activator: round(median(cpuRounds.activator), 1),
      },
      cpuRatioVsNode: round(median(cpuRounds.activator) / median(cpuRounds.nodeFloor), 3),
      c1P50Ms: Object.fromEntries(TARGETS.map((t) => [t, round(c1p50(t), 3)])) as Record<Target, number>,
      rounds: rounds.map((row) => Object.fromEntries(TARGETS.map((t) => [t, Math.round(row[t])])) as Record<Target, number>),
      pinned: opts.pin,
      activatorRuntime: opts.tsx ? 'tsx' : 'tsc',
    };
    if (opts.profile) {
      // A separate activator under --cpu-prof, loaded alone, so the profile is of the hot path only.
      await activator.stop();
      rmSync(profDir, { recursive: true, force: true });
      const port = await freeLoopbackPort();
      const profiled = startActivatorProxy(port, true);
      children.push(profiled);
      await waitForPort(port, 30_000, '127.0.0.1', profiled);
      const url = `http://127.0.0.1:${port}/`;
      await wrk({ url, host: HOST, connections: 50, durationS: opts.warmupS, cpus: wrkCpus });
      const res = await wrk({ url, host: HOST, connections: 50, durationS: opts.durationS, cpus: wrkCpus });
      await profiled.stop();
      // With tsx, module hooks run on a worker thread that writes its own (idle) profile: take the main thread's.
      const summaries = readdirSync(profDir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => ({ file: join(profDir, f), summary: summariseProfile(join(profDir, f)) }))
        .sort((a, b) => b.summary.totalMs - a.summary.totalMs);
      const main = summaries[0];
      if (main) {
        result.profile = main.file;
        opts.log(formatProfile(`activator CPU profile under wrk -c50 (${Math.round(res.rps)} req/s; ${main.file})`, main.summary));
      }
    }
    return result;
  } finally {
    for (const c of children.reverse()) await c.stop();
  }
}
