/** deploy/undeploy/convergence against small fakes of the Engine API and the docker CLI. */
import t from 'tap';
import YAML from 'yaml';
import { assessService, waitForConvergence } from '../../../src/deploy/converge.js';
import { deploy, findStacks, undeploy } from '../../../src/deploy/deploy.js';
import type { DockerCli, StackDeployOptions } from '../../../src/deploy/docker-cli.js';
import { DeployError, InvalidInputError, StackValidationError, TimeoutError } from '../../../src/deploy/errors.js';
import { STACK_NAMESPACE_LABEL, type NetworkInfo, type StackEngine, type StackObject, type StackService } from '../../../src/deploy/stack-engine.js';
import { LABELS } from '../../../src/labels.js';
import type { TaskInfo, TaskState } from '../../../src/swarm/swarm.js';

const STACK = `name: shop
services:
  web:
    image: shop/web
    expose: ["80"]
    deploy:
      replicas: 2
  worker:
    image: shop/web
`;

function task(serviceId: string, state: TaskState, extra: Partial<TaskInfo> = {}): TaskInfo {
  return {
    id: `${serviceId}-${Math.random().toString(36).slice(2, 8)}`,
    serviceId,
    nodeId: 'n1',
    state,
    desiredState: 'running',
    error: undefined,
    message: state,
    exitCode: undefined,
    containerId: undefined,
    createdAt: new Date().toISOString(),
    addresses: [],
    ...extra,
  };
}

/** Services/tasks/networks in memory; stackDeploy "creates" services whose tasks run at once. */
class FakeCluster implements StackEngine, DockerCli {
  services: StackService[] = [];
  tasks: TaskInfo[] = [];
  networks: Array<StackObject & { stack: string }> = [];
  network: NetworkInfo | null = { name: 'traefik-public', driver: 'overlay', scope: 'swarm' };
  deployed: Array<{ stack: string; yaml: string; options: StackDeployOptions }> = [];
  removed: string[] = [];
  /** How the next created tasks end up. */
  taskState: TaskState = 'running';
  networkRemovalFailures = 0;

  async ping(): Promise<void> {}
  async inspectNetwork(name: string): Promise<NetworkInfo | null> {
    return this.network && this.network.name === name ? this.network : null;
  }
  async listServices(filters: string[]): Promise<StackService[]> {
    return this.services.filter((s) => filters.every((f) => {
      const [k, v] = f.split('=') as [string, string | undefined];
      return v === undefined ? k in s.labels : s.labels[k] === v;
    }));
  }
  async listTasks(serviceId: string): Promise<TaskInfo[]> {
    return this.tasks.filter((x) => x.serviceId === serviceId);
  }
  async listNetworks(stack: string): Promise<StackObject[]> {
    return this.networks.filter((n) => n.stack === stack);
  }
  async removeNetwork(id: string): Promise<void> {
    if (this.networkRemovalFailures-- > 0) throw new Error('network has active endpoints');
    this.networks = this.networks.filter((n) => n.id !== id);
  }
  async listConfigsAndSecrets(): Promise<StackObject[]> {
    return [];
  }
  async listLocalContainers(): Promise<StackObject[]> {
    return [];
  }
  async stackDeploy(stack: string, yaml: string, options: StackDeployOptions): Promise<string> {
    this.deployed.push({ stack, yaml, options });
    const doc = YAML.parse(yaml) as { services: Record<string, { deploy?: { replicas?: number; labels?: string[] | Record<string, string> } }> };
    for (const [name, svc] of Object.entries(doc.services)) {
      const raw = svc.deploy?.labels ?? [];
      const labels: Record<string, string> = Array.isArray(raw) ? Object.fromEntries(raw.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) : { ...raw };
      labels[STACK_NAMESPACE_LABEL] = stack;
      const full = `${stack}_${name}`;
      const replicas = svc.deploy?.replicas ?? 1;
      const existing = this.services.find((s) => s.name === full);
      const id = existing?.id ?? `id-${full}`;
      this.services = this.services.filter((s) => s.name !== full);
      this.services.push({ id, name: full, labels, replicas, updateState: undefined, updateMessage: undefined });
      this.tasks = this.tasks.filter((x) => x.serviceId !== id);
      for (let i = 0; i < replicas; i++) this.tasks.push(task(id, this.taskState, this.taskState === 'failed' ? { error: 'task: non-zero exit (1)', exitCode: 1 } : {}));
      if (this.taskState === 'failed') for (let i = 0; i < 3; i++) this.tasks.push(task(id, 'failed', { error: 'task: non-zero exit (1)', exitCode: 1 }));
    }
    if (!this.networks.some((n) => n.stack === stack)) this.networks.push({ id: `net-${stack}`, name: `${stack}_default`, stack });
    return `Creating service ${stack}_web`;
  }
  async stackRm(stack: string): Promise<string> {
    this.removed.push(stack);
    const ids = new Set(this.services.filter((s) => s.labels[STACK_NAMESPACE_LABEL] === stack).map((s) => s.id));
    this.services = this.services.filter((s) => !ids.has(s.id));
    this.tasks = this.tasks.filter((x) => !ids.has(x.serviceId));
    if (this.networkRemovalFailures > 0) throw new Error(`Failed to remove network net-${stack}: network has active endpoints`);
    this.networks = this.networks.filter((n) => n.stack !== stack);
    return `Removing service ${stack}_web`;
  }
}

const base = { file: 'stack.yml', env: 'mr-1', domain: 'example.com', text: STACK, cwd: '/tmp', timeoutMs: 2000 };

t.test('deploys asleep, records state labels, reports services and URLs', async (t) => {
  const c = new FakeCluster();
  const lines: string[] = [];
  const now = new Date('2026-11-26T10:00:00.000Z');
  const report = await deploy({ engine: c, cli: c, now: () => now }, { ...base, onProgress: (l) => lines.push(l) });
  t.equal(report.stack, 'shop-mr-1');
  t.same(report.urls, ['https://shop.mr-1.example.com']);
  t.same(report.services.map((s) => [s.name, s.role, s.state, s.replicas, s.wakeReplicas]), [
    ['shop-mr-1_web', 'http', 'asleep', 0, 2],
    ['shop-mr-1_worker', 'worker', 'asleep', 0, 1],
  ]);
  t.equal(c.deployed.length, 1);
  t.equal(c.deployed[0]?.options.cwd, '/tmp', 'relative paths resolve against the stack file directory');
  t.equal(c.deployed[0]?.options.prune, true);
  const web = c.services.find((s) => s.name === 'shop-mr-1_web');
  t.equal(web?.labels[LABELS.stateSince], '2026-11-26T10:00:00.000Z', 'state since quoted through YAML as a string');
  t.equal(web?.labels[LABELS.stateReason], 'deployed asleep (cli)');
  t.ok(report.convergedMs !== null);
  t.ok(lines.some((l) => /converged/.test(l)), 'progress reported');
});

t.test('nothing is deployed when the stack is invalid or the network is missing', async (t) => {
  const c = new FakeCluster();
  await t.rejects(deploy({ engine: c, cli: c }, { ...base, idleTimeout: 'soon' }), StackValidationError);
  c.network = null;
  await t.rejects(deploy({ engine: c, cli: c }, base), InvalidInputError);
  c.network = { name: 'traefik-public', driver: 'bridge', scope: 'local' };
  await t.rejects(deploy({ engine: c, cli: c }, base), /swarm-scoped overlay/);
  t.equal(c.deployed.length, 0);
});

t.test('a redeploy keeps awake services awake and keeps their state labels', async (t) => {
  const c = new FakeCluster();
  await deploy({ engine: c, cli: c, now: () => new Date('2026-11-26T10:00:00.000Z') }, base);
  // The activator woke the web service (and wrote its state labels).
  const web = c.services.find((s) => s.name === 'shop-mr-1_web') as StackService;
  web.replicas = 2;
  web.labels[LABELS.stateSince] = '2026-11-26T11:00:00.000Z';
  web.labels[LABELS.stateReason] = 'woken: request';
  const report = await deploy({ engine: c, cli: c, now: () => new Date('2026-11-26T12:00:00.000Z') }, base);
  t.equal(report.services.find((s) => s.service === 'web')?.state, 'awake');
  const after = c.services.find((s) => s.name === 'shop-mr-1_web');
  t.equal(after?.replicas, 2);
  t.equal(after?.labels[LABELS.stateSince], '2026-11-26T11:00:00.000Z');
  t.equal(after?.labels[LABELS.stateReason], 'woken: request');
  const worker = c.services.find((s) => s.name === 'shop-mr-1_worker');
  t.equal(worker?.labels[LABELS.stateSince], '2026-11-26T10:00:00.000Z', 'unchanged asleep service keeps its since');
});

t.test('a redeploy keeps what sleeping saved; one that wakes the app folds the sleep in', async (t) => {
  const c = new FakeCluster();
  await deploy({ engine: c, cli: c, now: () => new Date('2026-11-26T10:00:00.000Z') }, base);
  const web = c.services.find((s) => s.name === 'shop-mr-1_web') as StackService;
  web.labels[LABELS.savingsAsleepSeconds] = '7200';
  web.labels[LABELS.savingsAsleepDays] = '2026-11-25:7200';
  web.labels[LABELS.savingsRss] = '41943040';
  await deploy({ engine: c, cli: c, now: () => new Date('2026-11-26T11:00:00.000Z') }, base);
  const kept = c.services.find((s) => s.name === 'shop-mr-1_web');
  t.equal(kept?.labels[LABELS.savingsAsleepSeconds], '7200', 'asleep → asleep: kept, the sleep goes on');
  t.equal(kept?.labels[LABELS.savingsRss], '41943040');
  await deploy({ engine: c, cli: c, now: () => new Date('2026-11-26T12:00:00.000Z') }, { ...base, awake: true });
  const woke = c.services.find((s) => s.name === 'shop-mr-1_web');
  t.equal(woke?.labels[LABELS.savingsAsleepSeconds], String(7200 + 2 * 3600), 'asleep since the first deploy at 10:00, woken at 12:00');
  t.equal(woke?.labels[LABELS.savingsAsleepDays], '2026-11-25:7200,2026-11-26:7200');
});

t.test('--awake deploys with the replicas and waits for running tasks', async (t) => {
  const c = new FakeCluster();
  const report = await deploy({ engine: c, cli: c }, { ...base, awake: true });
  t.same(report.services.map((s) => s.replicas), [2, 1]);
  t.equal(c.services.find((s) => s.name === 'shop-mr-1_web')?.labels[LABELS.stateReason], 'deployed awake (cli)');
});

t.test('failing tasks fail the deploy with the task error', async (t) => {
  const c = new FakeCluster();
  c.taskState = 'failed';
  await t.rejects(deploy({ engine: c, cli: c }, { ...base, awake: true }), { message: /did not converge: shop-mr-1_web: 5 tasks failed; last: task: non-zero exit \(1\); shop-mr-1_worker/ });
});

t.test('assessService: the states of one service', async (t) => {
  const since = Date.now() - 1000;
  const svc = (replicas: number, extra: Partial<StackService> = {}): StackService => ({ id: 's', name: 'a_web', labels: {}, replicas, updateState: undefined, updateMessage: undefined, ...extra });
  t.equal(assessService({ service: 'a_web', replicas: 0 }, undefined, [], since).detail, 'service not created yet');
  t.equal(assessService({ service: 'a_web', replicas: 0 }, svc(0), [], since).state, 'converged');
  t.equal(assessService({ service: 'a_web', replicas: 0 }, svc(0), [task('s', 'running', { desiredState: 'shutdown' })], since).detail, 'stopping 1 task');
  t.equal(assessService({ service: 'a_web', replicas: 1 }, svc(1), [task('s', 'starting')], since).detail, '0/1 running, newest task starting');
  t.equal(assessService({ service: 'a_web', replicas: 1 }, svc(1), [task('s', 'running')], since).state, 'converged');
  t.equal(assessService({ service: 'a_web', replicas: 1 }, svc(1, { updateState: 'updating' }), [task('s', 'running')], since).state, 'pending');
  t.match(assessService({ service: 'a_web', replicas: 1 }, svc(1, { updateState: 'paused', updateMessage: 'update paused due to failure' }), [], since).detail, /update paused/);
  t.equal(assessService({ service: 'a_web', replicas: 2 }, svc(1), [], since).detail, 'desired replicas are 1, waiting for 2');
  const old = task('s', 'failed', { createdAt: new Date(since - 60_000).toISOString() });
  t.equal(assessService({ service: 'a_web', replicas: 1 }, svc(1), [old, old, old, task('s', 'starting')], since).state, 'pending', 'old failures are history');
  t.match(assessService({ service: 'a_web', replicas: 1 }, svc(1), [task('s', 'rejected', { error: 'No such image: x' })], since).detail, /rejected \(No such image: x\)/);
});

t.test('waitForConvergence times out with what is still pending', async (t) => {
  const c = new FakeCluster();
  c.services.push({ id: 's', name: 'a_web', labels: {}, replicas: 1, updateState: undefined, updateMessage: undefined });
  c.tasks.push(task('s', 'starting'));
  await t.rejects(waitForConvergence(c, [{ service: 'a_web', replicas: 1 }], [], { since: new Date(), timeoutMs: 300, intervalMs: 50 }), TimeoutError);
  await t.rejects(waitForConvergence(c, [{ service: 'a_web', replicas: 1 }], [], { since: new Date(), timeoutMs: 300, intervalMs: 50 }), { message: /a_web \(0\/1 running, newest task starting\)/ });
});

t.test('undeploy removes services and networks, retrying networks that are still in use; idempotent', async (t) => {
  const c = new FakeCluster();
  await deploy({ engine: c, cli: c }, base);
  c.networkRemovalFailures = 2;
  const report = await undeploy({ engine: c, cli: c }, 'shop-mr-1', { timeoutMs: 5000 });
  t.ok(report.existed);
  t.same(report.removedServices.sort(), ['shop-mr-1_web', 'shop-mr-1_worker']);
  t.same(report.removedNetworks, ['shop-mr-1_default']);
  t.same(c.services, []);
  t.same(c.networks, []);
  const again = await undeploy({ engine: c, cli: c }, 'shop-mr-1');
  t.notOk(again.existed);
  t.same(c.removed, ['shop-mr-1'], 'docker stack rm not run for a stack that is gone');
});

t.test('findStacks: by the labels deploy wrote, or by <app>-<env>', async (t) => {
  const c = new FakeCluster();
  await deploy({ engine: c, cli: c }, base);
  await deploy({ engine: c, cli: c }, { ...base, app: 'blog' });
  t.same(await findStacks(c, 'mr-1'), ['blog-mr-1', 'shop-mr-1']);
  t.same(await findStacks(c, 'mr-1', 'shop'), ['shop-mr-1']);
  t.same(await findStacks(c, 'mr-2'), []);
  c.services.push({ id: 'x', name: 'legacy-mr-1_web', labels: { [STACK_NAMESPACE_LABEL]: 'legacy-mr-1' }, replicas: 1, updateState: undefined, updateMessage: undefined });
  t.same(await findStacks(c, 'mr-1', 'legacy'), ['legacy-mr-1'], 'found by name without our labels');
});

t.test('docker CLI failures surface with their output', async (t) => {
  const c = new FakeCluster();
  c.stackDeploy = async () => {
    throw new DeployError('docker stack deploy --compose-file ... failed (exit 1): service web: undefined network "nope"');
  };
  await t.rejects(deploy({ engine: c, cli: c }, base), { message: /undefined network "nope"/ });
});

t.test('undeploy refuses a stack deploy did not make (it once removed the activator itself)', async (t) => {
  const c = new FakeCluster();
  c.services.push({ id: 'a1', name: 'swarm-activator_activator', labels: { [STACK_NAMESPACE_LABEL]: 'swarm-activator', 'traefik.enable': 'true' }, replicas: 2, updateState: undefined, updateMessage: undefined });
  await t.rejects(undeploy({ engine: c, cli: c }, 'swarm-activator'), { name: 'InvalidInputError', message: /stack swarm-activator was not made by swarm-activator deploy \(service swarm-activator_activator has no swarm-activator\.deploy\.app/ });
  t.same(c.removed, [], 'docker stack rm never ran');
  t.equal(c.services.length, 1, 'the activator is still there');
});

t.test('deploy refuses a stack whose Host another environment owns', async (t) => {
  const c = new FakeCluster();
  c.services.push({ id: 'o1', name: 'other-prod_web', labels: { [STACK_NAMESPACE_LABEL]: 'other-prod', [LABELS.enable]: 'true', [LABELS.deployEnv]: 'prod', [LABELS.hosts]: 'shop.mr-1.example.com' }, replicas: 1, updateState: undefined, updateMessage: undefined });
  await t.rejects(deploy({ engine: c, cli: c }, base), { name: 'InvalidInputError', message: /host shop\.mr-1\.example\.com is already claimed by service other-prod_web \(stack other-prod, environment prod\)/ });
  t.equal(c.deployed.length, 0, 'nothing deployed');
  const again = await deploy({ engine: c, cli: c }, { ...base, env: 'mr-2' });
  t.equal(again.stack, 'shop-mr-2', 'another Host deploys');
  const redeploy = await deploy({ engine: c, cli: c }, { ...base, env: 'mr-2' });
  t.equal(redeploy.stack, 'shop-mr-2', 'a redeploy of the same stack keeps its own Host');
});
