/** `swarm-activator labels <stack.yml> --env … --domain …`: the labelled stack, not deployed. */
import { Command } from 'commander';
import { StackValidationError } from '../deploy/errors.js';
import { formatIssue, labelStack } from '../deploy/label-stack.js';
import type { CommonOptions } from './common.js';
import { runCommand, withCommonOptions, type CliContext } from './context.js';
import { readStackFile, toLabelOptions, withLabelOptions, type LabelFlags } from './label-options.js';

export function labelsCommand(ctx: CliContext): Command {
  const cmd = new Command('labels')
    .summary('print the labelled stack without deploying it')
    .description(
      'Print the stack file as deploy would deploy it: Traefik and activator labels added, replicas 0 (unless --awake), the shared network attached. Needs no Docker. Problems are reported with file, service and key, and the exit code is 2.',
    )
    .argument('<stack-file>', 'compose/stack file (version 3)');
  withLabelOptions(cmd);
  withCommonOptions(cmd);
  return cmd.action((path: string, flags: LabelFlags & CommonOptions) =>
    runCommand(ctx, flags, async (out) => {
      const input = readStackFile(path);
      const result = labelStack(input.text, toLabelOptions(input.file, flags));
      for (const w of result.warnings) out.warn(formatIssue(w));
      if (!result.ok) throw new StackValidationError(input.file, result.errors, 'fix them and run again');
      out.result(result.yaml, {
        stack: result.stack,
        app: result.app,
        env: result.env,
        group: result.group,
        services: result.services,
        urls: result.urls,
        yaml: result.yaml,
      });
    }),
  );
}
