/** The CLI as a child process (through tsx): --help everywhere, --json output, exit codes. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'deploy');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

t.test('--help on every command', async (t) => {
  const main = await cli(['--help']);
  t.equal(main.code, 0);
  for (const cmd of ['deploy', 'undeploy', 'labels', 'ls', 'wake', 'sleep', 'set-idle']) {
    t.match(main.stdout, new RegExp(`\\n  ${cmd} `), `${cmd} listed`);
    const help = await cli([cmd, '--help']);
    t.equal(help.code, 0, `${cmd} --help exits 0`);
    t.match(help.stdout, new RegExp(`Usage: swarm-activator ${cmd}`));
    t.match(help.stdout, /--json/, `${cmd} has --json`);
  }
});

t.test('labels --json: the labelled stack and its plan, parsed', async (t) => {
  const run = await cli(['labels', join(FIXTURES, 'ok-web-worker', 'stack.yml'), '--env', 'mr-7', '--domain', 'example.com', '--json']);
  t.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { stack: string; urls: string[]; services: Array<{ swarmName: string; role: string; replicas: number }>; yaml: string };
  t.equal(out.stack, 'shop-mr-7');
  t.same(out.urls, ['https://shop.mr-7.example.com']);
  t.same(out.services.map((s) => [s.swarmName, s.role, s.replicas]), [
    ['shop-mr-7_web', 'http', 0],
    ['shop-mr-7_worker', 'worker', 0],
  ]);
  t.ok((YAML.parse(out.yaml) as { services: Record<string, unknown> }).services.web, 'yaml included');
});

t.test('labels prints YAML for people; warnings go to stderr', async (t) => {
  const run = await cli(['labels', join(FIXTURES, 'ok-multi-http', 'stack.yml'), '--env', 'mr-7', '--domain', 'example.com', '--network', 'proxy']);
  t.equal(run.code, 0);
  t.match(run.stdout, /^# swarm-activator: stack shop-mr-7/);
  t.match(run.stderr, /warning: .*services\.frontend: ports: publishes container port 3000/);
});

t.test('invalid input: exit 2, every problem named, JSON error with --json', async (t) => {
  const run = await cli(['labels', join(FIXTURES, 'err-bad-duration', 'stack.yml'), '--env', 'mr-7', '--domain', 'example.com', '--idle-timeout', '10x', '--json']);
  t.equal(run.code, 2);
  const out = JSON.parse(run.stdout) as { error: string; details: string[]; exitCode: number };
  t.match(out.error, /2 problems found/);
  t.match(out.details.join('\n'), /--idle-timeout: invalid duration "10x"/);
  t.match(out.details.join('\n'), /services\.api: x-swarm-activator\.idle-timeout: invalid duration "soon"/);
  t.match(run.stderr, /^error: .*2 problems found/m);

  const missing = await cli(['labels', 'no-such-file.yml', '--env', 'a', '--domain', 'example.com']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /no-such-file\.yml: cannot read the stack file: no such file/);

  const usage = await cli(['deploy', 'x.yml']);
  t.equal(usage.code, 2, 'missing required option');
  t.match(usage.stderr, /required option '-e, --env <name>' not specified/);

  const badIdle = await cli(['set-idle', 'app', 'soon']);
  t.equal(badIdle.code, 2);
  t.match(badIdle.stderr, /<duration>: invalid duration "soon"/);
});

t.test('Docker unreachable: exit 1 with a clear message', async (t) => {
  const run = await cli(['ls', '--json'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
  t.equal(run.code, 1);
  t.match(JSON.parse(run.stdout), { error: /Docker API unreachable/, exitCode: 1 });
  const bad = await cli(['ls'], { DOCKER_HOST: 'ssh://user@host' });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /DOCKER_HOST="ssh:\/\/user@host" is not supported/);
});
