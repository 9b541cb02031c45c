/** `swarm-activator wake <app>` and `swarm-activator sleep <app>`. */
import { Command } from 'commander';
import { sleepApp, wakeApp, type ScaleReport } from '../deploy/app-control.js';
import { formatDuration } from '../duration.js';
import { parseTimeout, type CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';

interface ScaleFlags extends CommonOptions {
  wait: boolean;
  timeout: string;
}

const APP_HELP = 'a service name (its whole group), a stack name (<app>-<env>) or a group name';

export function wakeCommand(ctx: CliContext): Command {
  return scaleCommand(ctx, 'wake');
}

export function scaleCommand(ctx: CliContext, direction: 'wake' | 'sleep'): Command {
  const cmd = new Command(direction)
    .summary(direction === 'wake' ? 'wake an app now (e.g. before a demo) and wait until it runs' : 'put an app to sleep now')
    .description(
      direction === 'wake'
        ? 'Scale every service of the app to its swarm-activator.replicas through Docker (DOCKER_HOST), recording the wake in its state labels, and wait until its tasks are running.'
        : 'Scale every service of the app to its idle replicas (swarm-activator.idle-replicas, default 0) through Docker (DOCKER_HOST), recording "manual sleep (cli)" in its state labels, and wait until its tasks are gone.',
    )
    .argument('<app>', APP_HELP)
    .option('--no-wait', 'return right after scaling')
    .option('--timeout <duration>', 'how long to wait', formatDuration(5 * 60_000));
  withCommonOptions(cmd);
  return cmd.action((app: string, flags: ScaleFlags) =>
    runCommand(ctx, flags, async (out) => {
      const timeoutMs = parseTimeout(flags.timeout);
      const deps = ctx.docker();
      const fn = direction === 'wake' ? wakeApp : sleepApp;
      const report = await fn({ swarm: deps.swarm, engine: deps.engine }, app, { wait: flags.wait, timeoutMs, onProgress: out.progress });
      out.result(human(direction, report), report);
    }),
  );
}

function human(direction: 'wake' | 'sleep', r: ScaleReport): string {
  const verb = direction === 'wake' ? 'awake' : 'asleep';
  const took = r.convergedMs === null ? '' : ` in ${(r.convergedMs / 1000).toFixed(1)}s`;
  return [`${r.app} ${verb}${took}`, ...r.services.map((s) => `  ${s.name}: ${s.changed ? `${s.from ?? '?'} → ${s.to}` : `unchanged (${s.to})`}`)].join('\n');
}
