/** What every command shares: output (people / --json), Docker clients, durations, errors → exit codes. */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseDuration } from '../duration.js';
import { createDockerCli, type DockerCli } from '../deploy/docker-cli.js';
import { DeployError, EXIT, InvalidInputError } from '../deploy/errors.js';
import { DockerodeStackEngine } from '../deploy/stack-engine.js';
import { createProgress, isInteractive } from './progress.js';
import { SwarmUnavailableError, type SwarmClient } from '../swarm/swarm.js';

export interface CommonOptions {
  json?: boolean;
  quiet?: boolean;
}

/**
 * stdout carries the result (text or JSON) and nothing else; stderr carries progress (live on a
 * terminal, plain lines otherwise: see progress.ts) and warnings.
 */
export interface Output {
  json: boolean;
  progress: (line: string) => void;
  warn(line: string): void;
  result(human: string, json: unknown): void;
  /** Ends the live progress line; before an error is reported. */
  end(): void;
}

export interface Streams {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
}

export function createOutput(options: CommonOptions, streams: Streams = process, env: NodeJS.ProcessEnv = process.env): Output {
  const json = options.json === true;
  const progress = createProgress(streams.stderr, { interactive: isInteractive(streams.stderr, env) });
  return {
    json,
    progress(line) {
      if (!options.quiet) progress.line(line);
    },
    warn(line) {
      progress.end();
      streams.stderr.write(`warning: ${line}\n`);
    },
    result(human, value) {
      progress.end();
      streams.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : human.endsWith('\n') ? human : `${human}\n`);
    },
    end: () => progress.end(),
  };
}

export interface DockerDeps {
  dockerHost: string;
  engine: DockerodeStackEngine;
  swarm: SwarmClient;
  cli: DockerCli;
}

export function dockerHostFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const host = env.DOCKER_HOST?.trim() || 'unix:///var/run/docker.sock';
  if (!/^(unix|tcp|http|https):\/\//.test(host)) {
    throw new InvalidInputError(`DOCKER_HOST="${host}" is not supported here: use unix:///path/to/docker.sock or tcp://host:port`);
  }
  return host;
}

/**
 * TLS client certificates as the docker CLI finds them: DOCKER_TLS_VERIFY set → ca.pem, cert.pem
 * and key.pem from DOCKER_CERT_PATH (default ~/.docker), and https to the tcp:// host.
 */
export function tlsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { protocol: 'https'; ca: Buffer; cert: Buffer; key: Buffer } | undefined {
  if (!env.DOCKER_TLS_VERIFY || env.DOCKER_TLS_VERIFY === '0') return undefined;
  const dir = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
  try {
    return { protocol: 'https', ca: readFileSync(join(dir, 'ca.pem')), cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  } catch (err) {
    throw new InvalidInputError(`DOCKER_TLS_VERIFY is set but the certificates in ${dir} can't be read: ${(err as Error).message}`);
  }
}

export function createDockerDeps(env: NodeJS.ProcessEnv = process.env): DockerDeps {
  const dockerHost = dockerHostFromEnv(env);
  const tls = tlsOptionsFromEnv(env);
  const engine = new DockerodeStackEngine({ dockerHost, log: pino({ level: 'silent' }), ...(tls ? { dockerOptions: tls } : {}) });
  return { dockerHost, engine, swarm: engine.swarm, cli: createDockerCli({ env }) };
}

export function parseTimeout(value: string, flag = '--timeout'): number {
  try {
    const ms = parseDuration(value);
    if (ms <= 0) throw new Error(`"${value}" must be longer than 0`);
    return ms;
  } catch (err) {
    throw new InvalidInputError(`${flag}: ${(err as Error).message}`);
  }
}

/** Comma-separated list; "" or "none" gives an empty list. */
export function parseList(value: string): string[] {
  if (value.trim() === '' || value.trim() === 'none') return [];
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export interface FailureReport {
  message: string;
  details: string[];
  exitCode: number;
}

/** Any thrown value → the message, details and exit code the CLI reports. */
export function describeFailure(err: unknown): FailureReport {
  if (err instanceof InvalidInputError) return { message: err.message, details: err.details, exitCode: err.exitCode };
  if (err instanceof DeployError) return { message: err.message, details: [], exitCode: err.exitCode };
  if (err instanceof SwarmUnavailableError) {
    return { message: `${err.message} (is DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'} right?)`, details: [], exitCode: EXIT.failed };
  }
  const e = err as Error;
  return { message: e?.message ?? String(err), details: [], exitCode: EXIT.failed };
}

export function reportFailure(err: unknown, json: boolean, streams: Streams = process): number {
  const f = describeFailure(err);
  streams.stderr.write(`error: ${f.message}\n`);
  for (const d of f.details) streams.stderr.write(`  ${d}\n`);
  if (json) streams.stdout.write(`${JSON.stringify({ error: f.message, details: f.details, exitCode: f.exitCode }, null, 2)}\n`);
  return f.exitCode;
}

/** Left-aligned columns for tables. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}
