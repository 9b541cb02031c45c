/**
 * The npm package as users install it: `npm pack` (prepack builds dist/), then
 * `npm install -g ./swarm-activator-*.tgz` into a temporary prefix, and the `swarm-activator` it
 * puts on PATH runs. No Docker needed; the install resolves dependencies as any user's would.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'deploy');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

t.test('npm pack, then npm install -g of the tarball: a working swarm-activator on PATH', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sa-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  let started = Date.now();
  const pack = await run('npm', ['pack', '--json', '--pack-destination', dir]);
  t.equal(pack.code, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; size: number; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  t.comment(`npm pack: ${info!.filename}, ${files.length} files, ${(info!.size / 1000).toFixed(1)} kB, ${Date.now() - started} ms (with the prepack build)`);
  t.equal(info!.filename, `${pkg.name}-${pkg.version}.tgz`);
  t.ok(files.includes('dist/cli/main.js'), 'the CLI');
  t.ok(files.includes('dist/main.js'), 'the activator');
  t.ok(files.includes('stack/activator.yml') && files.includes('stack/traefik.yml'), 'the production stack files');
  t.same(files.filter((f) => /^(src|test|bench|scripts|node_modules|build)\//.test(f)), [], 'no sources, tests or build leftovers');
  t.match(readFileSync(join(ROOT, 'dist', 'cli', 'main.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'bin has a node shebang');

  const prefix = join(dir, 'prefix');
  started = Date.now();
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, info!.filename)], { cwd: dir });
  t.equal(install.code, 0, install.stderr);
  t.comment(`npm install -g: ${Date.now() - started} ms`);

  // As a user's shell finds it: by name on PATH, from another directory.
  const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
  const version = await run('swarm-activator', ['--version'], { cwd: dir, env });
  t.equal(version.code, 0, version.stderr);
  t.equal(version.stdout.trim(), pkg.version);

  const help = await run('swarm-activator', ['deploy', '--help'], { cwd: dir, env });
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: swarm-activator deploy/);

  // Its dependencies came along: labelling a stack uses yaml and the deploy module.
  const labels = await run('swarm-activator', ['labels', join(FIXTURES, 'ok-web-worker', 'stack.yml'), '--env', 'mr-7', '--domain', 'example.com', '--json'], { cwd: dir, env });
  t.equal(labels.code, 0, labels.stderr);
  t.same((JSON.parse(labels.stdout) as { urls: string[] }).urls, ['https://shop.mr-7.example.com']);

  const noDocker = await run('swarm-activator', ['ls', '--json'], { cwd: dir, env: { ...env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
  t.equal(noDocker.code, 1, 'dockerode loads and reports the unreachable engine');
  t.match(JSON.parse(noDocker.stdout), { error: /Docker API unreachable/ });
});
