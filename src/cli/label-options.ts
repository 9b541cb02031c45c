/** The labelling flags `deploy` and `labels` share, and their mapping to LabelStackOptions. */
import { dirname, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { DEPLOY_DEFAULTS, type LabelStackOptions } from '../deploy/label-stack.js';
import { InvalidInputError } from '../deploy/errors.js';
import { STRATEGIES } from '../labels.js';
import { parseList } from './common.js';

export interface LabelFlags {
  env: string;
  domain: string;
  app?: string;
  hostTemplate?: string;
  serviceHostTemplate?: string;
  network?: string;
  certResolver?: string;
  middlewares?: string;
  idleTimeout?: string;
  strategy?: string;
  group?: string;
  keepAwake?: string;
  timezone?: string;
  awake?: boolean;
  overrideLabels?: boolean;
}

export function withLabelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-e, --env <name>', 'environment name, e.g. mr-42 (stack name is <app>-<env>)')
    .requiredOption('-d, --domain <domain>', 'domain the host names end with, e.g. preview.example.com')
    .option('--app <name>', "app name (default: the stack file's top-level name:)")
    .option('--host-template <template>', 'host of the main HTTP service', DEPLOY_DEFAULTS.hostTemplate)
    .option('--service-host-template <template>', 'host of every other HTTP service', DEPLOY_DEFAULTS.serviceHostTemplate)
    .option('--network <name>', 'shared external overlay network of Traefik and the activator', DEPLOY_DEFAULTS.network)
    .option('--cert-resolver <name>', 'Traefik certificate resolver of the https router ("" for none)', DEPLOY_DEFAULTS.certResolver)
    .option('--middlewares <list>', 'comma-separated middlewares of both routers ("none" for none)', DEPLOY_DEFAULTS.middlewares.join(','))
    .option('--idle-timeout <duration>', 'sleep after this long without traffic, e.g. 30m (default: the activator\'s)')
    .addOption(new Option('--strategy <strategy>', "what a request to a sleeping app gets (default: the activator's)").choices([...STRATEGIES]))
    .option('--group <name>', 'wake group of every service (default: the stack name)')
    .option('--keep-awake <windows>', 'never asleep in these windows, woken 2m ahead, e.g. "Mon-Fri 08:00-18:00"')
    .option('--timezone <zone>', "IANA time zone of --keep-awake (default: the activator's ACTIVATOR_TIMEZONE, else UTC)")
    .option('--awake', 'deploy with the replicas as written instead of asleep')
    .option('--override-labels', 'replace labels of yours that conflict with ours instead of failing');
}

export interface StackInput {
  file: string;
  text: string;
  cwd: string;
}

export function readStackFile(path: string): StackInput {
  const file = resolve(path);
  try {
    return { file: path, text: readFileSync(file, 'utf8'), cwd: dirname(file) };
  } catch (err) {
    throw new InvalidInputError(`${path}: cannot read the stack file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

export function toLabelOptions(file: string, flags: LabelFlags): LabelStackOptions {
  return {
    file,
    env: flags.env,
    domain: flags.domain,
    ...(flags.app !== undefined ? { app: flags.app } : {}),
    ...(flags.hostTemplate !== undefined ? { hostTemplate: flags.hostTemplate } : {}),
    ...(flags.serviceHostTemplate !== undefined ? { serviceHostTemplate: flags.serviceHostTemplate } : {}),
    ...(flags.network !== undefined ? { network: flags.network } : {}),
    ...(flags.certResolver !== undefined ? { certResolver: flags.certResolver } : {}),
    ...(flags.middlewares !== undefined ? { middlewares: parseList(flags.middlewares) } : {}),
    ...(flags.idleTimeout !== undefined ? { idleTimeout: flags.idleTimeout } : {}),
    ...(flags.strategy !== undefined ? { strategy: flags.strategy } : {}),
    ...(flags.group !== undefined ? { group: flags.group } : {}),
    ...(flags.keepAwake !== undefined ? { keepAwake: flags.keepAwake } : {}),
    ...(flags.timezone !== undefined ? { timezone: flags.timezone } : {}),
    awake: flags.awake === true,
    overrideLabels: flags.overrideLabels === true,
  };
}
