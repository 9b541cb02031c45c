/** `swarm-activator set-idle <app> <duration>` */
import { Command } from 'commander';
import { setIdle } from '../deploy/app-control.js';
import type { CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';

export function setIdleCommand(ctx: CliContext): Command {
  const cmd = new Command('set-idle')
    .summary("change an app's idle timeout at runtime")
    .description(
      'Set swarm-activator.idle-timeout on every service of the app. A label-only update: Swarm does not restart tasks for it, and the activator picks it up from the service event.',
    )
    .argument('<app>', 'a service name (its whole group), a stack name (<app>-<env>) or a group name')
    .argument('<duration>', 'e.g. 15m, 1h30m');
  withCommonOptions(cmd);
  return cmd.action((app: string, duration: string, flags: CommonOptions) =>
    runCommand(ctx, flags, async (out) => {
      const report = await setIdle({ swarm: ctx.docker().swarm }, app, duration);
      out.result(
        [`${app}: idle timeout ${report.idleTimeout}`, ...report.services.map((s) => `  ${s.name}: ${s.previous ?? 'default'} → ${report.idleTimeout}`)].join('\n'),
        report,
      );
    }),
  );
}
