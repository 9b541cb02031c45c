/** Runs Debian's wrk (bounded by -d and a kill timer) and parses its summary. */
import { spawn } from 'node:child_process';

export interface WrkOptions {
  url: string;
  connections: number;
  threads?: number;
  durationS: number;
  host?: string;
  /** taskset CPU list for wrk itself. */
  cpus?: string | undefined;
}

export interface WrkResult {
  rps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? Number.NaN);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    p50Ms: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99Ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

export async function wrk(opts: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(opts.threads ?? 1), '-c', String(opts.connections), '-d', `${opts.durationS}s`, '--latency', '--timeout', '5s'];
  if (opts.host) args.push('-H', `Host: ${opts.host}`);
  args.push(opts.url);
  const [cmd, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, 'wrk', ...args]] : ['wrk', args];
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // wrk stops itself after -d; this only guards against a hang.
    const timer = setTimeout(() => proc.kill('SIGKILL'), (opts.durationS + 15) * 1000);
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      const res = parseWrk(out);
      if (code !== 0 || !Number.isFinite(res.rps)) reject(new Error(`wrk ${argv.join(' ')} failed (exit ${code}):\n${out}`));
      else resolve(res);
    });
  });
}
