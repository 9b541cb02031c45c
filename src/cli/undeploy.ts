/** `swarm-activator undeploy --env <name> [--app <app> | <stack-file>]` */
import { Command } from 'commander';
import YAML from 'yaml';
import { findStacks, undeploy, DEFAULT_TIMEOUT_MS, type UndeployReport } from '../deploy/deploy.js';
import { InvalidInputError } from '../deploy/errors.js';
import { formatDuration } from '../duration.js';
import { parseTimeout, type CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';
import { readStackFile } from './label-options.js';

interface UndeployFlags extends CommonOptions {
  env: string;
  app?: string;
  timeout: string;
}

export function undeployCommand(ctx: CliContext): Command {
  const cmd = new Command('undeploy')
    .summary('remove everything an environment created')
    .description(
      'Remove the stack(s) deploy created for an environment (docker stack rm) and wait until their services, networks, configs and secrets are gone. The app comes from --app, from the stack\n' +
        "file's name:, or from the labels deploy wrote (when only one app has that environment).\n" +
        'Removing an environment that does not exist is not an error.',
    )
    .argument('[stack-file]', "stack file whose name: is the app (optional)")
    .requiredOption('-e, --env <name>', 'environment name given to deploy')
    .option('--app <name>', 'app name (when several apps have this environment)')
    .option('--timeout <duration>', 'how long to wait for the removal', formatDuration(DEFAULT_TIMEOUT_MS));
  withCommonOptions(cmd);
  return cmd.action((path: string | undefined, flags: UndeployFlags) =>
    runCommand(ctx, flags, async (out) => {
      const timeoutMs = parseTimeout(flags.timeout);
      let app = flags.app;
      if (app === undefined && path !== undefined) {
        const input = readStackFile(path);
        const name = (YAML.parse(input.text) as { name?: unknown } | null)?.name;
        if (typeof name !== 'string') throw new InvalidInputError(`${path}: name: no top-level name in the stack file; pass --app`);
        app = name;
      }
      const deps = ctx.docker();
      await deps.engine.ping();
      const stacks = await findStacks(deps.engine, flags.env, app);
      if (stacks.length > 1) {
        throw new InvalidInputError(`several apps have environment "${flags.env}": ${stacks.join(', ')}; pass --app`);
      }
      const stack = stacks[0] ?? (app ? `${app}-${flags.env}` : undefined);
      if (stack === undefined) {
        out.progress(`no stack has environment "${flags.env}": nothing to remove`);
        out.result(`nothing to remove for environment ${flags.env}`, { stack: null, existed: false, removedServices: [], removedNetworks: [] });
        return;
      }
      const report = await undeploy({ engine: deps.engine, cli: deps.cli }, stack, { timeoutMs, onProgress: out.progress });
      out.result(human(report), report);
    }),
  );
}

function human(r: UndeployReport): string {
  if (!r.existed) return `stack ${r.stack}: nothing to remove`;
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return `stack ${r.stack} removed in ${(r.ms / 1000).toFixed(1)}s (${count(r.removedServices.length, 'service')}, ${count(r.removedNetworks.length, 'network')})`;
}
