/**
 * deploy → wake by Host → undeploy, on the real swarm, through the CLI (its --json output parsed):
 * a two-service stack (web + worker of one group) deploys asleep; one request carrying its Host,
 * sent to the activator running as a Swarm service, wakes both; undeploy removes every service and
 * network the stack made.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { undeploy } from '../../src/deploy/deploy.js';
import { createDockerCli } from '../../src/deploy/docker-cli.js';
import { DockerodeStackEngine, STACK_NAMESPACE_LABEL } from '../../src/deploy/stack-engine.js';
import { LABELS } from '../../src/labels.js';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { send } from '../helpers/http.js';
import { startSharedMiddlewares } from '../helpers/traefik.js';
import { DOCKER_HOST, SA_NETWORK, docker, runId, runningTasks, serviceState, waitFor } from '../helpers/swarm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const run = runId('dp');
const env = `it-${run}`;
const app = 'sadeploy';
const stack = `${app}-${env}`;
const host = `${app}.${env}.test.local`;
const cliEnv = { ...process.env, DOCKER_HOST, SA_NETWORK };

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(args: string[]): Promise<CliRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, env: cliEnv, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - started });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sa-deploy-'));
const stackFile = join(dir, 'stack.yml');
writeFileSync(
  stackFile,
  `# A web service and a worker (no port) of one app: they sleep and wake together.
name: ${app}
services:
  web:
    image: sa/sample-app:dev
    expose: ["80"]
    deploy:
      labels:
        sa.test: "1"
        sa.run: ${run}
  worker:
    image: sa/sample-app:dev
    deploy:
      labels:
        - sa.test=1
        - sa.run=${run}
`,
);

let activator: RunningActivator | undefined;
const engine = new DockerodeStackEngine({ dockerHost: DOCKER_HOST, log: pino({ level: 'silent' }) });

// Whatever happens, nothing of this file survives it.
t.teardown(async () => {
  if (activator) {
    if (!t.passing()) t.comment(await activator.logs());
    await activator.stop();
  }
  await undeploy({ engine, cli: createDockerCli({ env: cliEnv }) }, stack, { timeoutMs: 120_000 }).catch((err: unknown) => t.comment(`cleanup: ${(err as Error).message}`));
  rmSync(dir, { recursive: true, force: true });
});

interface DeployJson {
  stack: string;
  services: Array<{ name: string; service: string; role: string; state: string; replicas: number; wakeReplicas: number; hosts: string[] }>;
  urls: string[];
  convergedMs: number;
}

t.test('deploy --json: both services exist asleep, labelled for Traefik and the activator', async (t) => {
  const res = await cli(['deploy', stackFile, '--env', env, '--domain', 'test.local', '--network', SA_NETWORK, '--resolve-image', 'never', '--idle-timeout', '10m', '--json']);
  t.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout) as DeployJson;
  t.comment(`deploy: ${Math.round(res.ms)} ms wall (CLI start included), converged ${out.convergedMs} ms after docker stack deploy`);
  t.equal(out.stack, stack);
  t.same(out.urls, [`https://${host}`]);
  t.same(out.services.map((s) => [s.name, s.role, s.state, s.replicas, s.wakeReplicas]), [
    [`${stack}_web`, 'http', 'asleep', 0, 1],
    [`${stack}_worker`, 'worker', 'asleep', 0, 1],
  ]);
  t.match(res.stderr, /converged in/, 'progress on stderr');

  const web = await serviceState(`${stack}_web`);
  const worker = await serviceState(`${stack}_worker`);
  t.equal(web.replicas, 0, 'web asleep');
  t.equal(worker.replicas, 0, 'worker asleep');
  t.match(web.labels, {
    'traefik.enable': 'true',
    'traefik.swarm.network': SA_NETWORK,
    [`traefik.http.routers.${stack}-http.rule`]: `Host(\`${host}\`)`,
    [`traefik.http.routers.${stack}-https.rule`]: `Host(\`${host}\`)`,
    [`traefik.http.routers.${stack}-https.tls.certresolver`]: 'le',
    [`traefik.http.services.${stack}.loadbalancer.server.port`]: '80',
    [LABELS.enable]: 'true',
    [LABELS.group]: stack,
    [LABELS.replicas]: '1',
    [LABELS.idleTimeout]: '10m',
    [LABELS.stateReason]: 'deployed asleep (cli)',
    'sa.test': '1',
    'sa.run': run,
  });
  t.match(web.labels[LABELS.stateSince], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'state.since is an ISO time (not re-typed by YAML)');
  t.match(worker.labels, { [LABELS.enable]: 'true', [LABELS.group]: stack, [LABELS.replicas]: '1', 'sa.test': '1' });
  t.notOk(Object.keys(worker.labels).some((k) => k.startsWith('traefik.')), 'the worker has no Traefik labels');

  const net = (await docker.getNetwork(SA_NETWORK).inspect()) as { Id: string };
  const spec = (await docker.getService(`${stack}_web`).inspect()) as { Spec: { TaskTemplate: { Networks?: Array<{ Target: string }> } } };
  t.ok(spec.Spec.TaskTemplate.Networks?.some((n) => n.Target === net.Id), `web is attached to ${SA_NETWORK}`);

  const ls = await cli(['ls', '--json']);
  t.equal(ls.code, 0, ls.stderr);
  const rows = (JSON.parse(ls.stdout) as { apps: Array<{ service: string; state: string; hosts: string[]; kind: string }> }).apps.filter((a) => a.service.startsWith(`${stack}_`));
  t.same(rows.map((r) => [r.service, r.state, r.kind, r.hosts]), [
    [`${stack}_web`, 'asleep', 'http', [host]],
    [`${stack}_worker`, 'asleep', 'worker', []],
  ]);
});

t.test('a request carrying its Host wakes both services of the group', async (t) => {
  // Traefik's service defines the shared redirect the deployed routers use (stack/traefik.yml):
  // without it the app fails closed (a middleware of unknown type may refuse).
  t.teardown(await startSharedMiddlewares(run));
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_WAKE_TIMEOUT: '60s' } });
  await activator.waitForApp(`${stack}_web`);
  await activator.waitForApp(`${stack}_worker`);

  const started = performance.now();
  const res = await send(`${activator.url}/hello?from=deploy-test`, { headers: { host, 'x-forwarded-proto': 'https' } });
  const wakeMs = performance.now() - started;
  t.equal(res.status, 200, res.text());
  const echo = res.json<{ hostname: string; path: string; headers: Record<string, string> }>();
  t.ok(echo.hostname, `answered by the sample app (${echo.hostname})`);
  t.equal(echo.path, '/hello');
  t.equal(echo.headers.host, host);
  t.comment(`cold request through the activator: ${Math.round(wakeMs)} ms`);

  const web = await serviceState(`${stack}_web`);
  const worker = await serviceState(`${stack}_worker`);
  t.equal(web.replicas, 1, 'web woke to 1');
  t.equal(worker.replicas, 1, 'worker woke with its group to 1');
  t.match(worker.labels[LABELS.stateReason], new RegExp(`^woken with group ${stack}`), 'the worker records why it woke');
  await waitFor('worker task running', async () => (await runningTasks(`${stack}_worker`)).length === 1, 60_000, 200);
  t.pass('worker task running');
});

t.test('set-idle changes the label only; sleep and wake act through Docker', async (t) => {
  const before = (await runningTasks(`${stack}_web`)).map((x) => x.id);
  const taskSpec = async () => ((await docker.getService(`${stack}_web`).inspect()) as { Spec: { TaskTemplate: unknown } }).Spec.TaskTemplate;
  const specBefore = await taskSpec();
  const idle = await cli(['set-idle', stack, '45m', '--json']);
  t.equal(idle.code, 0, idle.stderr);
  t.match(JSON.parse(idle.stdout), { idleTimeout: '45m', idleTimeoutMs: 2_700_000 });
  t.equal((await serviceState(`${stack}_web`)).labels[LABELS.idleTimeout], '45m');
  // Swarm replaces tasks only when the task template changes (ForceUpdate included): a label
  // write must leave it exactly as it was.
  t.same(await taskSpec(), specBefore, 'the task template is unchanged, so no task is restarted for it');
  const after = (await runningTasks(`${stack}_web`)).map((x) => x.id);
  if (after.join() !== before.join()) {
    // Not the label write (the template above is the same): say why Swarm replaced it.
    const old = (await docker.listTasks({ filters: { service: [`${stack}_web`] } })) as Array<{ ID: string; Status?: { State?: string; Message?: string; Err?: string } }>;
    t.comment(`running tasks before ${JSON.stringify(before)}, after ${JSON.stringify(after)}; the earlier ones now: ${JSON.stringify(old.filter((x) => before.includes(x.ID)).map((x) => x.Status))}`);
  }

  const slept = await cli(['sleep', stack, '--json']);
  t.equal(slept.code, 0, slept.stderr);
  t.same((JSON.parse(slept.stdout) as { services: Array<{ to: number }> }).services.map((s) => s.to), [0, 0]);
  const web = await serviceState(`${stack}_web`);
  t.equal(web.replicas, 0);
  t.equal(web.labels[LABELS.stateReason], 'manual sleep (cli)');
  t.same(await runningTasks(`${stack}_web`), [], 'no task left after sleep returned');

  const woke = await cli(['wake', `${stack}_web`, '--json']);
  t.equal(woke.code, 0, woke.stderr);
  const report = JSON.parse(woke.stdout) as { services: Array<{ name: string; to: number }>; convergedMs: number };
  t.same(report.services.map((s) => [s.name, s.to]), [
    [`${stack}_web`, 1],
    [`${stack}_worker`, 1],
  ]);
  t.comment(`wake (cli) converged in ${report.convergedMs} ms`);
  t.equal((await runningTasks(`${stack}_web`)).length, 1, 'running when wake returned');
  t.equal((await runningTasks(`${stack}_worker`)).length, 1);
});

t.test('undeploy removes every service and network of the stack', async (t) => {
  const networksBefore = (await docker.listNetworks({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } })) as Array<{ Name: string }>;
  t.ok(networksBefore.some((n) => n.Name === `${stack}_default`), 'the stack made its default network');
  const res = await cli(['undeploy', '--env', env, '--json']);
  t.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { stack: string; existed: boolean; removedServices: string[]; removedNetworks: string[]; ms: number };
  t.comment(`undeploy: ${Math.round(res.ms)} ms wall, ${out.ms} ms from docker stack rm to gone`);
  t.equal(out.stack, stack, 'found from the env label alone');
  t.ok(out.existed);
  t.same(out.removedServices.sort(), [`${stack}_web`, `${stack}_worker`]);
  t.same(out.removedNetworks, [`${stack}_default`]);
  t.same(await docker.listServices({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } }), [], 'no service left');
  t.same(await docker.listNetworks({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } }), [], 'no network left');
  const containers = await docker.listContainers({ all: true, filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } });
  t.same(containers, [], 'no container left');

  const again = await cli(['undeploy', '--env', env, '--app', app, '--json']);
  t.equal(again.code, 0, 'undeploy is idempotent');
  t.equal((JSON.parse(again.stdout) as { existed: boolean }).existed, false);
});
