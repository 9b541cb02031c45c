/** `swarm-activator report [--since 7d] [--json]`: what sleeping saved, per app and environment. */
import { Command } from 'commander';
import { formatAge } from '../deploy/list-apps.js';
import { LABELS, idleReplicasOf, wakeReplicasOf } from '../labels.js';
import { savingsReport, type SavingsReport } from '../savings/savings.js';
import { parseTimeout, table, type CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';

interface ReportFlags extends CommonOptions {
  since?: string;
}

export function reportCommand(ctx: CliContext): Command {
  const cmd = new Command('report')
    .summary('what sleeping saved: memory × time asleep, per app and environment')
    .description(
      "Time asleep × the memory one task holds (its reservation, else its limit, else the RSS the activator measured while it was awake) × the tasks a sleep frees, per app and per environment, from the savings labels the activator writes with each scale (so it needs only Docker). With --since, asleep time counts from that UTC day's midnight (it is kept per UTC day).",
    )
    .option('--since <duration>', 'only this far back, e.g. 24h, 7d, 30d (default: all time)');
  withCommonOptions(cmd);
  return cmd.action((flags: ReportFlags) =>
    runCommand(ctx, flags, async (out) => {
      const sinceMs = flags.since !== undefined ? parseTimeout(flags.since, '--since') : undefined;
      const now = Date.now();
      const services = await ctx.docker().swarm.listServices([`${LABELS.enable}=true`]);
      const report = savingsReport(
        services.map((s) => ({ service: s.name, labels: s.labels, replicas: s.replicas, wakeReplicas: wakeReplicasOf(s.labels), idleReplicas: idleReplicasOf(s.labels), memory: s.memory })),
        { from: sinceMs === undefined ? undefined : now - sinceMs, to: now },
      );
      out.result(human(report), report);
    }),
  );
}

function mib(bytes: number | null): string {
  return bytes === null ? '?' : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

function human(r: SavingsReport): string {
  if (r.apps.length === 0) return 'no managed apps (no service has swarm-activator.enable=true)';
  const rows = r.apps.map((a) => [
    a.service,
    a.env,
    a.asleepNow ? 'asleep' : 'awake',
    formatAge(a.asleepSeconds * 1000),
    `${mib(a.memoryPerTaskBytes)} (${a.memorySource})${a.tasksFreed === 1 ? '' : ` × ${a.tasksFreed}`}`,
    a.savedGiBHours === null ? 'unknown' : `${a.savedGiBHours.toFixed(2)} GiB·h`,
  ]);
  const envs = r.environments.map((e) => [e.env, String(e.apps), formatAge(e.asleepSeconds * 1000), `${e.savedGiBHours.toFixed(2)} GiB·h${e.unknownMemory ? ` (+${e.unknownMemory} unknown)` : ''}`]);
  return [
    `saved ${r.total.savedGiBHours.toFixed(2)} GiB·h ${r.from ? `since ${r.from}` : 'in all'} (to ${r.to})`,
    '',
    table([['SERVICE', 'ENV', 'NOW', 'ASLEEP', 'MEMORY (SOURCE)', 'SAVED'], ...rows]),
    '',
    table([['ENV', 'APPS', 'ASLEEP', 'SAVED'], ...envs]),
  ].join('\n');
}
