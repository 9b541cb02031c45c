/**
 * `npm run bench` (scripts/bench.sh brings up the swarm, then runs this with tsx).
 * Runs the parts of issue 5, prints a table and writes bench/results.json.
 *
 * Env:
 *   BENCH_ONLY=coldStart,burst,hotPath,scale   subset to run (default: all parts; issue 14 adds
 *              peer,mondayMorning,burst10k,scale5k,viaTraefik)
 *   BENCH_COLD_DELAYS=0,1000                   sample-app STARTUP_DELAY_MS values
 *   BENCH_COLD_CYCLES=10                       cycles per delay (floor and activator each)
 *   BENCH_COLD_HEALTHCHECK=1                   also run the cycles with the image's HEALTHCHECK on
 *   BENCH_HOT_DURATION=5 BENCH_HOT_WARMUP=1 BENCH_HOT_ROUNDS=3 BENCH_HOT_C1_DURATION=3
 *   BENCH_PIN=0                                don't pin (default: wrk on CPU 0, origin and proxy on CPU 1, taskset)
 *   BENCH_PROFILE=1                            --cpu-prof the in-process activator (hot path) and print the top frames
 *   BENCH_HOT_TSX=1                            run the hot-path activator through tsx instead of tsc output
 *   BENCH_BURST_REQUESTS=1000 BENCH_BURST_WARMUP=0 BENCH_BURST_SETTLE_MS=10000
 *   BENCH_SCALE_SERVICES=1000 BENCH_SCALE_DURATION=5
 *   BENCH_MONDAY_APPS=1000 BENCH_MONDAY_WAKES=50
 *   BENCH_BURST10K_REQUESTS=10000              capped below the client's open-file limit (reported)
 *   BENCH_BURST10K_VIA=gateway                 or 'published' (127.0.0.1 through docker-proxy, which stops near 10,000)
 *   BENCH_BURST10K_HOLD_MS=15000               the app's start-up delay: RSS is read while all requests are held
 *   BENCH_SCALE5K_SERVICES=5000
 *   BENCH_VIA_CYCLES=5 BENCH_VIA_DURATION=5 BENCH_VIA_ROUNDS=3 BENCH_VIA_WS_MESSAGES=2000
 *   BENCH_VIA_PARTS=coldStart,hotPath,websocket   subset of viaTraefik's parts (default: all)
 *   BENCH_ACTIVATOR_IMAGE=swarm-activator:dev      image of the activator service (coldStart, burst, scale)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { burst, nofileOf } from './burst.js';
import { coldStart } from './cold-start.js';
import { hotPath } from './hot-path.js';
import { round } from './lib/stats.js';
import { mondayMorning } from './monday-morning.js';
import { peer } from './peer.js';
import { VIA_TRAEFIK_PARTS, viaTraefik, type ViaTraefikPart } from './via-traefik.js';
import { runCleanups } from './lib/proc.js';
import { shapeResults } from './lib/results.js';
import { formatTable } from './lib/table.js';
import { scale } from './scale.js';

const PARTS = ['coldStart', 'burst', 'hotPath', 'scale', 'peer', 'mondayMorning', 'burst10k', 'scale5k', 'viaTraefik'] as const;
type Part = (typeof PARTS)[number];

const env = process.env;
const list = (v: string | undefined, fallback: string) => (v ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
const int = (key: string, fallback: number) => {
  const v = env[key];
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v)) throw new Error(`${key} must be a whole number (got "${v}")`);
  return Number(v);
};

const viaParts = (): ViaTraefikPart[] => {
  const wanted = list(env.BENCH_VIA_PARTS, VIA_TRAEFIK_PARTS.join(','));
  for (const p of wanted) if (!(VIA_TRAEFIK_PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_VIA_PARTS: unknown part "${p}" (known: ${VIA_TRAEFIK_PARTS.join(', ')})`);
  return wanted as ViaTraefikPart[];
};

const only = list(env.BENCH_ONLY, PARTS.join(','));
for (const p of only) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_ONLY: unknown part "${p}" (known: ${PARTS.join(', ')})`);
const selected = (p: Part) => only.includes(p);
const outDir = join(process.cwd(), 'build', 'bench');
mkdirSync(outDir, { recursive: true });
const log = (line: string) => process.stdout.write(`${line}\n`);

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    log(`bench: ${sig}, cleaning up`);
    void runCleanups().then(() => process.exit(130));
  });
}

const machine = {
  nproc: cpus().length,
  cpu: cpus()[0]?.model ?? 'unknown',
  kernel: release(),
  node: process.version,
};

const results: Record<string, unknown> = {};
/** Issue 14's parts: one that fails is recorded (error) and cleaned up, and the next still runs. */
const attempt = async (part: Part, fn: () => Promise<unknown>): Promise<void> => {
  if (!selected(part) || interrupted) return;
  log(`bench: ${part} …`);
  try {
    results[part] = await fn();
  } catch (err) {
    const message = (err as Error).message;
    log(`bench: ${part} failed: ${message}`);
    results[part] = { error: message.slice(0, 2000) };
    process.exitCode = 1;
    await runCleanups();
  }
};
const started = Date.now();
try {
  log(`bench: ${only.join(', ')} on ${machine.nproc} × ${machine.cpu}, kernel ${machine.kernel}, node ${machine.node}`);
  if (selected('hotPath') && !interrupted) {
    log('bench: hotPath …');
    results.hotPath = await hotPath({
      outDir,
      durationS: int('BENCH_HOT_DURATION', 5),
      warmupS: int('BENCH_HOT_WARMUP', 1),
      rounds: int('BENCH_HOT_ROUNDS', 3),
      c1DurationS: int('BENCH_HOT_C1_DURATION', 3),
      pin: env.BENCH_PIN !== '0',
      profile: env.BENCH_PROFILE === '1',
      tsx: env.BENCH_HOT_TSX === '1',
      log,
    });
  }
  if (selected('coldStart') && !interrupted) {
    log('bench: coldStart …');
    results.coldStart = await coldStart({
      outDir,
      delays: list(env.BENCH_COLD_DELAYS, '0,1000').map(Number),
      cycles: int('BENCH_COLD_CYCLES', 10),
      withHealthcheck: env.BENCH_COLD_HEALTHCHECK !== '0',
      log,
    });
  }
  if (selected('burst') && !interrupted) {
    log('bench: burst …');
    results.burst = await burst({ requests: int('BENCH_BURST_REQUESTS', 1000), warmup: env.BENCH_BURST_WARMUP !== '0', settleMs: int('BENCH_BURST_SETTLE_MS', 10_000), log });
  }
  if (selected('scale') && !interrupted) {
    log('bench: scale …');
    results.scale = await scale({ services: int('BENCH_SCALE_SERVICES', 1000), durationS: int('BENCH_SCALE_DURATION', 5), outDir, log });
  }
  await attempt('peer', () => peer({ log }));
  await attempt('burst10k', async () => {
    const wanted = int('BENCH_BURST10K_REQUESTS', 10_000);
    // Each held request is one client socket here; keep headroom for everything else the bench opens.
    const nofile = nofileOf('self');
    const requests = Math.min(wanted, nofile - 512);
    if (requests < wanted) log(`  burst10k: the client's open-file limit is ${nofile}: ${requests} requests instead of ${wanted}`);
    // The activator's gateway address, not the published port: docker-proxy (two descriptors per
    // connection under dockerd's open-file limit) stops, closing every connection, near 10,000
    // (docs/performance.md). The app starts after holdMs, so RSS is read with every request held.
    const r = await burst({ requests, warmup: env.BENCH_BURST_WARMUP !== '0', settleMs: int('BENCH_BURST_SETTLE_MS', 10_000), via: env.BENCH_BURST10K_VIA === 'published' ? 'published' : 'gateway', holdMs: int('BENCH_BURST10K_HOLD_MS', 15_000), log });
    const heldKb = r.heldCount && r.rssHeldGrowthMb !== null ? round((r.rssHeldGrowthMb * 1024) / r.heldCount, 2) : null;
    return { ...r, wanted, limitedBy: requests < wanted ? `the client's open-file limit (ulimit -n ${nofile})` : null, rssPerHeldKb: heldKb, rssPerAnsweredKb: round((r.rssGrowthMb * 1024) / requests, 2), peakPerHeldKb: round((r.peakGrowthMb * 1024) / requests, 2) };
  });
  await attempt('scale5k', () => scale({ services: int('BENCH_SCALE5K_SERVICES', 5000), durationS: int('BENCH_SCALE_DURATION', 5), outDir, log }));
  await attempt('viaTraefik', () => viaTraefik({ parts: viaParts(), cycles: int('BENCH_VIA_CYCLES', 5), durationS: int('BENCH_VIA_DURATION', 5), rounds: int('BENCH_VIA_ROUNDS', 3), wsMessages: int('BENCH_VIA_WS_MESSAGES', 2000), log }));
  await attempt('mondayMorning', () => mondayMorning({ apps: int('BENCH_MONDAY_APPS', 1000), wakes: int('BENCH_MONDAY_WAKES', 50), log }));
} finally {
  await runCleanups();
}

const resultsFile = join(process.cwd(), 'bench', 'results.json');
const ran = shapeResults({ ...results, machine: { ...machine, ranAt: new Date(started).toISOString(), seconds: Math.round((Date.now() - started) / 1000), parts: Object.keys(results) } });
// A subset run replaces only its own parts: the other parts' last figures stay in the file.
const out = { ...previousResults(resultsFile), ...ran };
writeFileSync(resultsFile, `${JSON.stringify(out, null, 2)}\n`);
log('');
log(formatTable(out));
log('\nbench: wrote bench/results.json');

function previousResults(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}
