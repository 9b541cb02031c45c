/** keep-awake through the CLI (a child process, as in cli.test.ts) and deploy/labels --keep-awake. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { LABELS } from '../../../src/labels.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'deploy');

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

t.test('keep-awake and report are commands with --help', async (t) => {
  const main = await cli(['--help']);
  for (const [cmd, flag] of [['keep-awake', /--timezone/], ['report', /--since/]] as const) {
    t.match(main.stdout, new RegExp(`\\n  ${cmd} `), `${cmd} listed`);
    const help = await cli([cmd, '--help']);
    t.equal(help.code, 0);
    t.match(help.stdout, flag);
    t.match(help.stdout, /--json/);
  }
  const since = await cli(['report', '--since', 'a week'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
  t.equal(since.code, 2, 'a bad --since is invalid input');
  t.match(since.stderr, /--since: invalid duration "a week"/);
});

t.test('keep-awake: a bad window or zone is invalid input (exit 2) naming the argument, before any Docker call', async (t) => {
  const env = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  const bad = await cli(['keep-awake', 'shop', 'Mon-Fry 08:00-18:00'], env);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /<windows>: "Mon-Fry 08:00-18:00": "Fry" is not a day/);
  const zone = await cli(['keep-awake', 'shop', '08:00-18:00', '--timezone', 'Mars/Base'], env);
  t.equal(zone.code, 2);
  t.match(zone.stderr, /--timezone: "Mars\/Base" is not an IANA time zone/);
});

t.test('labels/deploy --keep-awake writes the label on every service; bad values are reported with the flag', async (t) => {
  const stack = join(FIXTURES, 'ok-web-worker', 'stack.yml');
  const ok = await cli(['labels', stack, '--env', 'mr-7', '--domain', 'example.com', '--keep-awake', 'Mon-Fri 08:00-18:00', '--timezone', 'Europe/Berlin', '--json']);
  t.equal(ok.code, 0, ok.stderr);
  const out = JSON.parse(ok.stdout) as { services: Array<{ name: string; labels: Record<string, string> }> };
  for (const s of out.services) {
    t.equal(s.labels[LABELS.keepAwake], 'Mon-Fri 08:00-18:00', `${s.name}: keep-awake`);
    t.equal(s.labels[LABELS.timezone], 'Europe/Berlin', `${s.name}: timezone`);
  }
  const bad = await cli(['labels', stack, '--env', 'mr-7', '--domain', 'example.com', '--keep-awake', '8-18', '--timezone', 'Nowhere/City']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--keep-awake: "8-18": expected "\[days\] HH:MM-HH:MM"/);
  t.match(bad.stderr, /--timezone: "Nowhere\/City" is not an IANA time zone/);
  const deploy = await cli(['deploy', stack, '--env', 'mr-7', '--domain', 'example.com', '--keep-awake', 'Mon-Fry 08:00-18:00'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
  t.equal(deploy.code, 2, 'deploy checks it before deploying');
  t.match(deploy.stderr, /--keep-awake: .*"Fry" is not a day/);
});
