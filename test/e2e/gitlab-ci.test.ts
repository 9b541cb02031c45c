/**
 * examples/gitlab-ci/.gitlab-ci.yml run for real by gitlab-ci-local (shell executor: no image is
 * pulled) against the test swarm, with the variables GitLab sets in a merge-request pipeline:
 *  1. the review job deploys examples/gitlab-ci/stack.yml asleep and writes the URL to its dotenv
 *     report;
 *  2. a request for that URL's Host wakes the app: sent to the activator's published port with the
 *     Host and X-Forwarded-* headers Traefik sends (as the other e2e tests do; Traefik itself is
 *     not part of the test swarm yet);
 *  3. the stop job removes every service and network of the environment.
 * On the way, `wake` on a terminal (a real pty, from `script`) shows live progress while its
 * --json output stays clean, and the job log (not a terminal) has plain progress lines.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { startSharedMiddlewares } from '../helpers/traefik.js';
import { send } from '../helpers/http.js';
import { DOCKER_HOST, SA_NETWORK, docker, runId, serviceState } from '../helpers/swarm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'gitlab-ci');
const run = runId('gl');
const app = `shop${run}`;
const iid = String(100 + Math.floor(Math.random() * 900));
const env = `mr-${iid}`;
const stack = `${app}-${env}`;
const domain = 'preview.test';
const host = `${app}.${env}.${domain}`;

// The project as GitLab checks it out: the example pipeline and stack at the repository root.
const work = mkdtempSync(join(tmpdir(), 'sa-gitlab-'));
const project = join(work, 'project');
mkdirSync(project);
copyFileSync(join(EXAMPLE, '.gitlab-ci.yml'), join(project, '.gitlab-ci.yml'));
copyFileSync(join(EXAMPLE, 'stack.yml'), join(project, 'stack.yml'));

// `swarm-activator` on the job's PATH, as the swarm-activator image has it (this checkout's CLI).
const bin = join(work, 'bin');
mkdirSync(bin);
writeFileSync(join(bin, 'swarm-activator'), `#!/bin/sh\nexec '${process.execPath}' --import '${import.meta.resolve('tsx')}' '${join(ROOT, 'src', 'cli', 'main.ts')}' "$@"\n`, { mode: 0o755 });
const jobEnv = { ...process.env, DOCKER_HOST, PATH: `${bin}:${process.env.PATH ?? ''}`, GCL_IGNORE_PREDEFINED_VARS: 'CI_PIPELINE_SOURCE,CI_MERGE_REQUEST_IID,CI_COMMIT_REF_NAME,CI_COMMIT_REF_SLUG' };

/** What GitLab sets in a merge-request pipeline, plus the project's own variables for this swarm. */
const variables: Record<string, string> = {
  CI_PIPELINE_SOURCE: 'merge_request_event',
  CI_MERGE_REQUEST_IID: iid,
  CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'feature/login',
  CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main',
  CI_COMMIT_REF_NAME: 'feature/login',
  CI_COMMIT_REF_SLUG: 'feature-login',
  APP: app,
  PREVIEW_DOMAIN: domain,
  APP_IMAGE: 'sa/sample-app:dev',
  SWARM_NETWORK: SA_NETWORK,
  DEPLOY_FLAGS: '--resolve-image never', // no registry here
};

function exec(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

function pipelineJob(job: string) {
  const args = [join(ROOT, 'scripts', 'gitlab-ci-local.sh'), '--force-shell-executor', '--unset-variable', 'CI_REGISTRY', job];
  for (const [k, v] of Object.entries(variables)) args.push('--variable', `${k}=${v}`);
  return exec('bash', args, { cwd: project, env: jobEnv });
}

const stackServices = () => docker.listServices({ filters: { label: [`com.docker.stack.namespace=${stack}`] } });
const stackNetworks = () => docker.listNetworks({ filters: { label: [`com.docker.stack.namespace=${stack}`] } });

let activator: RunningActivator | undefined;
t.teardown(async () => {
  if (activator) {
    if (!t.passing()) t.comment(await activator.logs());
    await activator.stop();
  }
  // Whatever happened, leave no stack behind.
  if ((await stackServices()).length > 0) await exec('docker', ['stack', 'rm', stack], { env: { ...process.env, DOCKER_HOST } });
  rmSync(work, { recursive: true, force: true });
});

t.before(async () => {
  // A git repository with an origin, as a runner's checkout has (gitlab-ci-local reads both).
  for (const args of [
    ['init', '-q', '-b', 'feature/login'],
    ['add', '-A'],
    ['-c', 'user.email=ci@example.com', '-c', 'user.name=ci', 'commit', '-qm', 'the app'],
    ['remote', 'add', 'origin', 'https://gitlab.example.com/agency/shop.git'],
    ['update-ref', 'refs/remotes/origin/main', 'HEAD'],
    ['symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/main'],
  ]) {
    const r = await exec('git', args, { cwd: project });
    if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  }
  // Traefik's service defines the shared redirect the deployed routers use (stack/traefik.yml).
  t.teardown(await startSharedMiddlewares(run));
  activator = await startActivator({ name: `${run}-activator`, run, env: { ACTIVATOR_SELECTOR: `swarm-activator.deploy.app=${app}`, ACTIVATOR_WAKE_TIMEOUT: '60s' } });
});

t.test('1. the review job deploys the stack asleep and reports its URL (dotenv)', async (t) => {
  const job = await pipelineJob('review');
  t.equal(job.code, 0, `${job.stdout}\n${job.stderr}`);
  t.comment(`review job: ${Math.round(job.ms)} ms (gitlab-ci-local start included)`);
  const log = readFileSync(join(project, '.gitlab-ci-local', 'output', 'review.log'), 'utf8');
  t.match(log, /converged in/, 'progress lines in the job log');
  t.notOk(log.includes(`\r${String.fromCharCode(27)}[2K`), 'plain lines: the job log is not a terminal');

  const dotenv = readFileSync(join(project, '.gitlab-ci-local', 'artifacts', 'review', '.gitlab-ci-reports', 'dotenv', 'deploy.env'), 'utf8');
  t.equal(dotenv.trim(), `PREVIEW_URL=https://${host}`, 'the dotenv report has the URL GitLab shows for the environment');
  const report = JSON.parse(readFileSync(join(project, '.gitlab-ci-local', 'artifacts', 'review', 'deploy.json'), 'utf8')) as { stack: string; services: Array<{ name: string; state: string }> };
  t.equal(report.stack, stack);
  t.same(report.services.map((s) => [s.name, s.state]), [[`${stack}_web`, 'asleep']]);

  const web = await serviceState(`${stack}_web`);
  t.equal(web.replicas, 0, 'asleep: 0 replicas');
  t.match(web.labels, { 'swarm-activator.enable': 'true', 'swarm-activator.deploy.env': env, 'swarm-activator.idle-timeout': '30m' });
});

t.test('2. a request for that Host wakes the app', async (t) => {
  await activator!.waitForApp(`${stack}_web`);
  const res = await send(`${activator!.url}/orders?page=2`, { headers: { host, 'x-forwarded-proto': 'https', 'x-forwarded-host': host, 'x-forwarded-for': '203.0.113.7' } });
  t.equal(res.status, 200, res.text());
  t.equal(res.header('x-activator-cold-start'), 'true', 'it went through a wake');
  const echo = res.json<{ path: string; headers: Record<string, string> }>();
  t.equal(echo.path, '/orders');
  t.equal(echo.headers.host, host);
  t.comment(`first request (wake included): ${Math.round(res.ms)} ms`);
  t.equal((await serviceState(`${stack}_web`)).replicas, 1, 'awake: 1 replica');
});

t.test('wake on a terminal: live progress on stderr, clean JSON on stdout', async (t) => {
  const sleep = await exec('swarm-activator', ['sleep', stack, '--json'], { env: jobEnv });
  t.equal(sleep.code, 0, sleep.stderr);
  const out = join(work, 'wake.json');
  // script(1) gives the CLI a pseudo-terminal for stderr; stdout goes to a file.
  const tty = await exec('script', ['-qec', `swarm-activator wake ${stack} --json > '${out}'`, '/dev/null'], { env: { ...jobEnv, TERM: 'xterm' } });
  t.equal(tty.code, 0, tty.stdout);
  const drawn = tty.stdout.split(`\r${String.fromCharCode(27)}[2K`);
  t.ok(drawn.some((d) => /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] .+\(\d+\.\ds\)$/.test(d)), 'a live line with a spinner and seconds on the terminal');
  const report = JSON.parse(readFileSync(out, 'utf8')) as { app: string; services: Array<{ name: string; to: number }> };
  t.same(report.services.map((s) => [s.name, s.to]), [[`${stack}_web`, 1]], 'stdout is exactly the JSON report');
});

t.test('3. the stop job removes every service and network', async (t) => {
  t.ok((await stackServices()).length > 0, 'the stack exists before');
  const job = await pipelineJob('stop-review');
  t.equal(job.code, 0, `${job.stdout}\n${job.stderr}`);
  t.comment(`stop-review job: ${Math.round(job.ms)} ms`);
  t.same(await stackServices(), [], 'no service left');
  t.same(await stackNetworks(), [], 'no network left');
  t.same(await docker.listContainers({ all: true, filters: { label: [`com.docker.stack.namespace=${stack}`] } }), [], 'no container left');
});
