/** What commands get from main: streams, environment, Docker clients (lazily), and the exit code. */
import type { Command } from 'commander';
import { createDockerDeps, createOutput, reportFailure, type CommonOptions, type DockerDeps, type Output, type Streams } from './common.js';

export interface CliContext {
  streams: Streams;
  env: NodeJS.ProcessEnv;
  docker(): DockerDeps;
  exitCode: number;
}

export function createContext(streams: Streams = process, env: NodeJS.ProcessEnv = process.env): CliContext {
  let deps: DockerDeps | undefined;
  return {
    streams,
    env,
    docker: () => (deps ??= createDockerDeps(env)),
    exitCode: 0,
  };
}

/** Runs a command body with its Output; any failure is reported once and sets the exit code. */
export async function runCommand(ctx: CliContext, options: CommonOptions, body: (out: Output) => Promise<void>): Promise<void> {
  const out = createOutput(options, ctx.streams, ctx.env);
  try {
    await body(out);
  } catch (err) {
    out.end();
    ctx.exitCode = reportFailure(err, out.json, ctx.streams);
  } finally {
    out.end();
  }
}

/** --json and --quiet, on every command. */
export function withCommonOptions(cmd: Command): Command {
  return cmd.option('--json', 'print the result as JSON on stdout (progress stays on stderr)').option('-q, --quiet', 'no progress lines on stderr');
}
