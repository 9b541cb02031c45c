/** `swarm-activator ls`: every managed app with its state. */
import { Command } from 'commander';
import { formatDuration } from '../duration.js';
import { describeSince, formatAge, listApps, type AppRow } from '../deploy/list-apps.js';
import { table, type CommonOptions } from './common.js';
import { adminTokenFrom, withTokenOption, type TokenFlags } from './admin-token.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';

interface LsFlags extends CommonOptions, TokenFlags {
  activatorUrl?: string;
}

export function lsCommand(ctx: CliContext): Command {
  const cmd = new Command('ls')
    .summary('list every managed app: state, replicas, hosts, idle timeout, last activity')
    .description(
      'List every service with swarm-activator.enable=true: asleep / waking / awake, replicas, hosts, idle timeout, and how long it has been asleep or awake (from the state labels). Last activity\n' +
        "comes from the activator's admin API when --activator-url (or SWARM_ACTIVATOR_URL) is given,\n" +
        'e.g. http://127.0.0.1:8081, with its admin token (a read-only one is enough); otherwise it shows as unknown.',
    )
    .option('--activator-url <url>', "the activator's admin URL (port 8081)");
  withTokenOption(cmd);
  withCommonOptions(cmd);
  return cmd.action((flags: LsFlags) =>
    runCommand(ctx, flags, async (out) => {
      const url = flags.activatorUrl ?? ctx.env.SWARM_ACTIVATOR_URL;
      const token = url ? adminTokenFrom(flags, ctx.env) : undefined;
      const result = await listApps(ctx.docker().swarm, url ? { activatorUrl: url, ...(token ? { token } : {}) } : {});
      for (const w of result.warnings) out.warn(w);
      const now = Date.now();
      out.result(human(result.apps, now), { apps: result.apps, activator: result.activator });
    }),
  );
}

function human(apps: AppRow[], now: number): string {
  if (apps.length === 0) return 'no managed apps (no service has swarm-activator.enable=true)';
  const rows = apps.map((a) => [
    a.service,
    a.state,
    `${a.running}/${a.replicas}${a.state === 'asleep' ? ` (wakes to ${a.wakeReplicas})` : ''}`,
    a.kind === 'worker' ? `(worker of ${a.group})` : a.hosts.join(',') || '-',
    a.idleTimeoutMs !== null ? formatDuration(a.idleTimeoutMs) : 'default',
    a.lastActivity !== null ? `${formatAge(Math.max(0, now - a.lastActivity))} ago` : 'unknown',
    describeSince(a, now) + (a.problems.length > 0 ? `  [label problems: ${a.problems.join('; ')}]` : ''),
  ]);
  return table([['SERVICE', 'STATE', 'REPLICAS', 'HOSTS', 'IDLE', 'LAST ACTIVITY', 'SINCE'], ...rows]);
}
