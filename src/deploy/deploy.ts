/**
 * deploy: label the stack, check the cluster, `docker stack deploy`, wait for convergence.
 * undeploy: `docker stack rm`, then wait until its services, networks, configs, secrets and (on this
 * node) containers are gone.
 */
import { readState, stateLabels } from '../apps/state.js';
import { LABELS, hostsFromLabels } from '../labels.js';
import { foldAsleep } from '../savings/savings.js';
import { waitForConvergence, type ConvergeTarget } from './converge.js';
import type { DockerCli, ResolveImage } from './docker-cli.js';
import { InvalidInputError, StackValidationError, TimeoutError } from './errors.js';
import { labelStack, setServiceLabels, setServiceReplicas, stringifyStack, type LabelStackOptions, type ServicePlan } from './label-stack.js';
import { STACK_NAMESPACE_LABEL, type StackEngine, type StackService } from './stack-engine.js';

export interface DeployDeps {
  engine: StackEngine;
  cli: DockerCli;
  now?: () => Date;
}

export interface DeployOptions extends LabelStackOptions {
  /** The stack file's text. */
  text: string;
  /** Directory relative paths in the stack file resolve against. */
  cwd: string;
  wait?: boolean;
  timeoutMs?: number;
  /** Remove services of the stack that are no longer in the file (default true). */
  prune?: boolean;
  resolveImage?: ResolveImage;
  withRegistryAuth?: boolean;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export type ServiceState = 'asleep' | 'awake' | 'always-on';

export interface DeployedService {
  /** Swarm service name. */
  name: string;
  /** Name in the stack file. */
  service: string;
  role: ServicePlan['role'];
  main: boolean;
  state: ServiceState;
  replicas: number | null;
  wakeReplicas: number | null;
  hosts: string[];
}

export interface DeployReport {
  stack: string;
  app: string;
  env: string;
  group: string;
  services: DeployedService[];
  urls: string[];
  warnings: string[];
  /** From the start of `docker stack deploy` to converged; null when not waited for. */
  convergedMs: number | null;
  totalMs: number;
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export async function deploy(deps: DeployDeps, options: DeployOptions): Promise<DeployReport> {
  const now = deps.now ?? (() => new Date());
  const started = Date.now();
  const progress = options.onProgress ?? (() => undefined);
  const labelled = labelStack(options.text, options);
  if (!labelled.ok) throw new StackValidationError(options.file, labelled.errors);
  const warnings = labelled.warnings.map((w) => `${w.file}: ${w.service ? `services.${w.service}: ` : ''}${w.key}: ${w.message}`);

  // Preflight: nothing is deployed when the cluster can't take the stack.
  await deps.engine.ping();
  const network = options.network ?? 'traefik-public';
  const net = await deps.engine.inspectNetwork(network);
  if (!net) {
    throw new InvalidInputError(`network "${network}" does not exist on this swarm; create it once with: docker network create --driver overlay --attachable ${network} (or pass --network)`);
  }
  if (net.driver !== 'overlay' || net.scope !== 'swarm') {
    throw new InvalidInputError(`network "${network}" is a ${net.scope}-scoped ${net.driver} network; services need a swarm-scoped overlay network`);
  }

  // A Host belongs to its first owner: a stack must not take over another environment's Host (the
  // activator would keep routing it to the first owner, and Traefik would load-balance between both).
  const ours = new Set(labelled.services.flatMap((plan) => plan.hosts.map((h) => h.toLowerCase())));
  for (const other of await deps.engine.listServices([`${LABELS.enable}=true`])) {
    if (other.labels[STACK_NAMESPACE_LABEL] === labelled.stack) continue;
    const taken = hostsFromLabels(other.labels).find((h) => ours.has(h));
    if (taken === undefined) continue;
    const where = other.labels[STACK_NAMESPACE_LABEL] ? `stack ${other.labels[STACK_NAMESPACE_LABEL]}` : 'no stack';
    const env = other.labels[LABELS.deployEnv] ? `, environment ${other.labels[LABELS.deployEnv]}` : '';
    throw new InvalidInputError(`host ${taken} is already claimed by service ${other.name} (${where}${env}); pick another --env or --domain, or undeploy that environment first`);
  }

  // A redeploy keeps awake services awake (a push must not cut off a demo) and keeps the state labels.
  const existing = new Map((await deps.engine.listServices([`${STACK_NAMESPACE_LABEL}=${labelled.stack}`])).map((s) => [s.name, s]));
  const at = now().toISOString();
  const doc = labelled.document;
  const services: DeployedService[] = [];
  for (const plan of labelled.services) {
    let replicas = plan.replicas;
    if (plan.role !== 'unmanaged') {
      const before = existing.get(plan.swarmName);
      const idle = plan.idleReplicas ?? 0;
      if (before && (before.replicas ?? 0) > idle && (replicas ?? 0) <= idle) {
        replicas = plan.wakeReplicas ?? 1;
        setServiceReplicas(doc, plan.name, replicas);
        progress(`${plan.swarmName}: awake now, stays awake (${replicas} replicas)`);
      }
      const awake = (replicas ?? 0) > idle;
      setServiceLabels(doc, plan.name, { ...stateLabelsFor(before, awake, idle, at), ...savingsLabelsFor(before, awake, idle, Date.parse(at)) });
    }
    services.push({
      name: plan.swarmName,
      service: plan.name,
      role: plan.role,
      main: plan.main,
      state: plan.role === 'unmanaged' ? 'always-on' : (replicas ?? 0) > (plan.idleReplicas ?? 0) ? 'awake' : 'asleep',
      replicas,
      wakeReplicas: plan.wakeReplicas,
      hosts: plan.hosts,
    });
  }
  const yaml = stringifyStack(doc, `swarm-activator deploy: stack ${labelled.stack}`);

  progress(`deploying stack ${labelled.stack} (${services.length} service${services.length === 1 ? '' : 's'})`);
  const deployStarted = now();
  const output = await deps.cli.stackDeploy(labelled.stack, yaml, {
    cwd: options.cwd,
    prune: options.prune ?? true,
    ...(options.resolveImage ? { resolveImage: options.resolveImage } : {}),
    ...(options.withRegistryAuth ? { withRegistryAuth: true } : {}),
  });
  for (const line of output.split('\n')) if (line.trim()) progress(`docker: ${line.trim()}`);

  let convergedMs: number | null = null;
  if (options.wait ?? true) {
    const targets: ConvergeTarget[] = labelled.services.flatMap((plan) => {
      const svc = services.find((s) => s.name === plan.swarmName);
      const mode = plan.role === 'unmanaged' ? modeOf(doc, plan.name) : 'replicated';
      return mode === 'replicated' ? [{ service: plan.swarmName, replicas: svc?.replicas ?? 1 }] : [];
    });
    const result = await waitForConvergence(deps.engine, targets, [`${STACK_NAMESPACE_LABEL}=${labelled.stack}`], {
      since: deployStarted,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      onProgress: progress,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    convergedMs = result.ms;
    progress(`stack ${labelled.stack} converged in ${(result.ms / 1000).toFixed(1)}s`);
  }
  return {
    stack: labelled.stack,
    app: labelled.app,
    env: labelled.env,
    group: labelled.group,
    services,
    urls: labelled.urls,
    warnings,
    convergedMs,
    totalMs: Date.now() - started,
  };
}

/** Keep the activator's record of when/why the service last changed, unless this deploy changes it. */
function stateLabelsFor(before: StackService | undefined, awake: boolean, idle: number, at: string): Record<string, string> {
  const wasAwake = before ? (before.replicas ?? 0) > idle : undefined;
  const since = before?.labels[LABELS.stateSince];
  if (before && wasAwake === awake && since) {
    const kind = readState(before.labels)?.kind;
    return { [LABELS.stateSince]: since, ...(kind ? { [LABELS.stateKind]: kind } : {}), [LABELS.stateReason]: before.labels[LABELS.stateReason] ?? '' };
  }
  return stateLabels('deployed', awake ? 'deployed awake (cli)' : 'deployed asleep (cli)', new Date(at));
}

/** Keep what sleeping saved so far (the stack file would wipe the labels); an asleep → awake deploy ends a sleep. */
function savingsLabelsFor(before: StackService | undefined, awake: boolean, idle: number, at: number): Record<string, string> {
  if (!before) return {};
  const kept: Record<string, string> = {};
  for (const key of [LABELS.savingsAsleepSeconds, LABELS.savingsAsleepDays, LABELS.savingsSince, LABELS.savingsRss]) {
    const value = before.labels[key];
    if (value !== undefined) kept[key] = value;
  }
  return awake ? { ...kept, ...foldAsleep(before.labels, before.replicas, idle, at) } : kept;
}

function modeOf(doc: Record<string, unknown>, service: string): string {
  const svc = (doc.services as Record<string, { deploy?: { mode?: unknown } }> | undefined)?.[service];
  return typeof svc?.deploy?.mode === 'string' ? svc.deploy.mode : 'replicated';
}

// --- undeploy ------------------------------------------------------------------------------------

export interface UndeployOptions {
  timeoutMs?: number;
  onProgress?: (line: string) => void;
}

export interface UndeployReport {
  stack: string;
  removedServices: string[];
  removedNetworks: string[];
  /** False when there was nothing to remove (undeploy is idempotent). */
  existed: boolean;
  ms: number;
}

/** The stacks `deploy` made for an environment (optionally of one app), from the labels it wrote. */
export async function findStacks(engine: StackEngine, env: string, app?: string): Promise<string[]> {
  const filters = [`${LABELS.deployEnv}=${env}`, ...(app ? [`${LABELS.deployApp}=${app}`] : [])];
  const stacks = new Set((await engine.listServices(filters)).map((s) => s.labels[STACK_NAMESPACE_LABEL]).filter((s): s is string => !!s));
  if (app) {
    // A stack whose services lost our labels (or were never labelled) is still <app>-<env>.
    const byName = await engine.listServices([`${STACK_NAMESPACE_LABEL}=${app}-${env}`]);
    if (byName.length > 0) stacks.add(`${app}-${env}`);
  }
  return [...stacks].sort();
}

export async function undeploy(deps: DeployDeps, stack: string, options: UndeployOptions = {}): Promise<UndeployReport> {
  const started = Date.now();
  const progress = options.onProgress ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = started + timeoutMs;
  const ns = `${STACK_NAMESPACE_LABEL}=${stack}`;

  const services = await deps.engine.listServices([ns]);
  // Only what deploy made: every service of the stack carries the labels deploy writes. Without
  // this, `undeploy --app swarm --env activator` removed the activator itself.
  const foreign = services.find((s) => !s.labels[LABELS.deployApp] || !s.labels[LABELS.deployEnv]);
  if (foreign) {
    throw new InvalidInputError(`stack ${stack} was not made by swarm-activator deploy (service ${foreign.name} has no ${LABELS.deployApp}/${LABELS.deployEnv} labels); refusing to remove it (use docker stack rm ${stack} if you mean it)`);
  }
  const networks = await deps.engine.listNetworks(stack);
  const others = await deps.engine.listConfigsAndSecrets(stack);
  if (services.length === 0 && networks.length === 0 && others.length === 0) {
    progress(`stack ${stack}: nothing to remove`);
    return { stack, removedServices: [], removedNetworks: [], existed: false, ms: Date.now() - started };
  }

  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  progress(`removing stack ${stack} (${count(services.length, 'service')}, ${count(networks.length, 'network')})`);
  try {
    const out = await deps.cli.stackRm(stack);
    for (const line of out.split('\n')) if (line.trim()) progress(`docker: ${line.trim()}`);
  } catch (err) {
    // Typically "network ... has active endpoints" while tasks are still stopping: we retry below.
    progress(`docker stack rm reported: ${(err as Error).message.split('\n')[0]}; finishing the removal`);
  }

  const tick = () => new Promise((r) => setTimeout(r, 250));
  let lastLine = '';
  for (;;) {
    const leftServices = await deps.engine.listServices([ns]);
    if (leftServices.length === 0) {
      // Networks can only go once every task's endpoint is detached; retry until they do.
      for (const n of await deps.engine.listNetworks(stack)) await deps.engine.removeNetwork(n.id).catch(() => undefined);
    }
    const leftNetworks = await deps.engine.listNetworks(stack);
    const leftOthers = await deps.engine.listConfigsAndSecrets(stack);
    // Swarm removes a removed service's containers shortly after; wait for the ones on this node.
    const leftContainers = leftServices.length === 0 ? await deps.engine.listLocalContainers(stack) : [];
    if (leftServices.length + leftNetworks.length + leftOthers.length + leftContainers.length === 0) break;
    const left = [
      ...leftServices.map((s) => `service ${s.name}`),
      ...leftNetworks.map((n) => `network ${n.name}`),
      ...leftOthers.map((o) => o.name),
      ...(leftContainers.length > 0 ? [`${leftContainers.length} container${leftContainers.length === 1 ? '' : 's'}`] : []),
    ];
    const line = `waiting for ${left.join(', ')}`;
    if (line !== lastLine) progress((lastLine = line));
    if (Date.now() >= deadline) throw new TimeoutError(`timed out after ${Math.round(timeoutMs / 1000)}s removing stack ${stack}; still there: ${left.join(', ')}`);
    await tick();
  }
  const ms = Date.now() - started;
  progress(`stack ${stack} removed in ${(ms / 1000).toFixed(1)}s`);
  return { stack, removedServices: services.map((s) => s.name), removedNetworks: networks.map((n) => n.name), existed: true, ms };
}

