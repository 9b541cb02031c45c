/** `swarm-activator keep-awake <app> <windows|off>` */
import { Command } from 'commander';
import { setKeepAwake } from '../deploy/app-control.js';
import type { CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';

interface KeepAwakeFlags extends CommonOptions {
  timezone?: string;
  lead?: string;
}

export function keepAwakeCommand(ctx: CliContext): Command {
  const cmd = new Command('keep-awake')
    .summary('keep an app awake in given windows (e.g. office hours), or stop doing so')
    .description(
      'Set swarm-activator.keep-awake on every service of the app (a label-only update: no task restarts). Inside a window the app is never put to sleep; it is woken the lead time (default 2m) before each window starts; outside, the idle timeout applies. "off" removes the windows.\n' +
        'Windows: "[days] HH:MM-HH:MM", comma-separated; days Mon, Mon-Fri, Fri-Mon or daily (none: every day); "22:00-02:00" ends the next morning.',
    )
    .argument('<app>', 'a service name (its whole group), a stack name (<app>-<env>) or a group name')
    .argument('<windows>', 'e.g. "Mon-Fri 08:00-18:00", or off')
    .option('--timezone <zone>', "IANA time zone of the windows (default: the activator's ACTIVATOR_TIMEZONE, else UTC)")
    .option('--lead <duration>', 'wake this long before each window (default 2m)');
  withCommonOptions(cmd);
  cmd.addHelpText('after', '\nExamples:\n  swarm-activator keep-awake shop-mr-42 "Mon-Fri 08:00-18:00" --timezone Europe/Berlin\n  swarm-activator keep-awake shop-mr-42 off');
  return cmd.action((app: string, windows: string, flags: KeepAwakeFlags) =>
    runCommand(ctx, flags, async (out) => {
      const report = await setKeepAwake({ swarm: ctx.docker().swarm }, app, windows, {
        ...(flags.timezone !== undefined ? { timezone: flags.timezone } : {}),
        ...(flags.lead !== undefined ? { lead: flags.lead } : {}),
      });
      const head =
        report.keepAwake === null
          ? `${app}: no keep-awake windows (the idle timeout alone decides)`
          : `${app}: kept awake ${report.keepAwake} (${report.timezone ?? "the activator's time zone"}), woken ${report.lead} ahead` +
            (report.next ? `\n  next window: ${report.next.start} → ${report.next.end}${report.timezone ? '' : ' (if the activator runs in UTC)'}` : '');
      out.result([head, ...report.services.map((s) => `  ${s.name}: ${s.previous ?? 'none'} → ${report.keepAwake ?? 'none'}`)].join('\n'), report);
    }),
  );
}
