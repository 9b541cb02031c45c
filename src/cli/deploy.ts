/** `swarm-activator deploy <stack.yml> --env <name> --domain <domain>` */
import { Command, Option } from 'commander';
import { deploy, DEFAULT_TIMEOUT_MS, type DeployReport } from '../deploy/deploy.js';
import { formatDuration } from '../duration.js';
import { parseTimeout, table, type CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';
import { readStackFile, toLabelOptions, withLabelOptions, type LabelFlags } from './label-options.js';

interface DeployFlags extends LabelFlags, CommonOptions {
  wait: boolean;
  timeout: string;
  prune: boolean;
  resolveImage?: 'always' | 'changed' | 'never';
  withRegistryAuth?: boolean;
}

export function deployCommand(ctx: CliContext): Command {
  const cmd = new Command('deploy')
    .summary('deploy a preview/test environment of a stack file, labelled and asleep')
    .description(
      'Label every service of the stack for Traefik and the activator, deploy it as stack <app>-<env> with `docker stack deploy` (asleep: 0 replicas, unless --awake), and wait until it converged. Nothing is deployed when the stack file or a flag has a problem; each is reported with file, service and key. Honours DOCKER_HOST.',
    )
    .argument('<stack-file>', 'compose/stack file (version 3)');
  withLabelOptions(cmd)
    .option('--no-wait', 'return once docker stack deploy has returned')
    .option('--timeout <duration>', 'how long to wait for convergence', formatDuration(DEFAULT_TIMEOUT_MS))
    .option('--no-prune', 'keep services of the stack that are no longer in the file')
    .addOption(new Option('--resolve-image <when>', 'passed to docker stack deploy').choices(['always', 'changed', 'never']))
    .option('--with-registry-auth', 'passed to docker stack deploy (private registries)');
  withCommonOptions(cmd);
  cmd.addHelpText('after', '\nExample:\n  swarm-activator deploy stack.yml --env mr-42 --domain preview.example.com --idle-timeout 30m --json');
  return cmd.action((path: string, flags: DeployFlags) =>
    runCommand(ctx, flags, async (out) => {
      const input = readStackFile(path);
      const timeoutMs = parseTimeout(flags.timeout);
      const deps = ctx.docker();
      const report = await deploy(
        { engine: deps.engine, cli: deps.cli },
        {
          ...toLabelOptions(input.file, flags),
          text: input.text,
          cwd: input.cwd,
          wait: flags.wait,
          timeoutMs,
          prune: flags.prune,
          ...(flags.resolveImage ? { resolveImage: flags.resolveImage } : {}),
          ...(flags.withRegistryAuth ? { withRegistryAuth: true } : {}),
          onProgress: out.progress,
        },
      );
      for (const w of report.warnings) out.warn(w);
      out.result(humanReport(report), deployJson(report));
    }),
  );
}

export function deployJson(report: DeployReport): Record<string, unknown> {
  return {
    stack: report.stack,
    app: report.app,
    env: report.env,
    group: report.group,
    services: report.services,
    urls: report.urls,
    convergedMs: report.convergedMs,
    warnings: report.warnings,
  };
}

function humanReport(r: DeployReport): string {
  const took = r.convergedMs === null ? 'not waited for' : `converged in ${(r.convergedMs / 1000).toFixed(1)}s`;
  const rows = r.services.map((s) => [
    s.name,
    s.role,
    s.state,
    s.wakeReplicas === null ? String(s.replicas ?? 1) : `${s.replicas ?? 0} (wakes to ${s.wakeReplicas})`,
    s.hosts.join(','),
  ]);
  return [`stack ${r.stack} deployed (${took})`, table([['SERVICE', 'ROLE', 'STATE', 'REPLICAS', 'HOSTS'], ...rows]), '', 'URLs:', ...r.urls.map((u) => `  ${u}`)].join('\n');
}
