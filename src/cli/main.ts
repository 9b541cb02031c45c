#!/usr/bin/env node
/**
 * swarm-activator CLI: deploy/undeploy preview environments, print labelled stacks, list apps,
 * wake/sleep them, tune their idle timeout and keep-awake windows. Exit codes: 0 ok, 1 failed, 2 invalid input.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { EXIT } from '../deploy/errors.js';
import { packageVersion, type Streams } from './common.js';
import { createContext } from './context.js';
import { deployCommand } from './deploy.js';
import { keepAwakeCommand } from './keep-awake.js';
import { labelsCommand } from './labels.js';
import { reportCommand } from './report.js';
import { lsCommand } from './ls.js';
import { setIdleCommand } from './set-idle.js';
import { sleepCommand } from './sleep.js';
import { undeployCommand } from './undeploy.js';
import { wakeCommand } from './wake.js';

export async function runCli(argv: string[], streams: Streams = process, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const ctx = createContext(streams, env);
  const program = new Command('swarm-activator')
    .description('Scale-to-zero for Docker Swarm services behind Traefik: deploy preview environments asleep, wake them on demand.')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
    });
  for (const cmd of [deployCommand(ctx), undeployCommand(ctx), labelsCommand(ctx), lsCommand(ctx), wakeCommand(ctx), sleepCommand(ctx), setIdleCommand(ctx), keepAwakeCommand(ctx), reportCommand(ctx)]) {
    program.addCommand(cmd);
  }
  program.exitOverride();
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors are invalid input.
      return err.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    }
    throw err;
  }
  return ctx.exitCode;
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Exit status of a program killed by SIGPIPE, as a shell reports it (128 + 13). */
export const EXIT_CLOSED_PIPE = 141;

/**
 * A closed pipe (`swarm-activator ls | head -1`) ends the CLI at once and quietly, as git and
 * docker end there (by SIGPIPE; Node ignores that signal, so the write fails with EPIPE instead).
 */
export function endQuietlyOnClosedPipe(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT_CLOSED_PIPE);
      throw err;
    });
  }
}

if (isMain()) {
  endQuietlyOnClosedPipe();
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
