/**
 * The swarm-activator image as users run it (swarm-activator:dev, built from the repo's Dockerfile
 * by scripts/build-images.sh): what is in it, its HEALTHCHECK, and the CLI it carries, with its
 * docker CLI, against the test swarm: through the mounted socket, and over TCP with TLS client
 * certificates (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), as a GitLab job would use it.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import t from 'tap';
import { startActivator } from '../helpers/activator.js';
import { DOCKER_HOST, SA_NETWORK, docker, freePort, runId, waitFor } from '../helpers/swarm.js';

const IMAGE = process.env.SA_ACTIVATOR_IMAGE ?? 'swarm-activator:dev';
const run = runId('img');
const socketPath = new URL(DOCKER_HOST).pathname;
const socketGid = String(statSync(socketPath).gid);
const hostEnv = { ...process.env, DOCKER_HOST };

const dir = mkdtempSync(join(tmpdir(), 'sa-image-'));
chmodSync(dir, 0o755); // the image's user (uid 1000) reads the stack file
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = hostEnv, timeoutMs = 180_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - started }),
    );
  });
}
/** `docker run --rm IMAGE ARGS...` on the test engine. */
const dockerRun = (opts: string[], args: string[]) => exec('docker', ['run', '--rm', ...opts, IMAGE, ...args]);
const withSocket = ['--group-add', socketGid, '-v', `${socketPath}:/var/run/docker.sock`];

t.test('the image: non-root, HEALTHCHECK, OCI labels, production files only', async (t) => {
  const info = (await docker.getImage(IMAGE).inspect()) as { Size: number; Config: { User: string; Cmd: string[]; Entrypoint: string[] | null; Healthcheck?: { Test: string[] }; Labels: Record<string, string> } };
  t.comment(`${IMAGE}: ${(info.Size / 1e6).toFixed(1)} MB`);
  t.equal(info.Config.User, 'node', 'runs as the unprivileged user node');
  t.same(info.Config.Cmd, ['node', '/app/dist/main.js'], 'the activator by default');
  t.notOk(info.Config.Entrypoint, 'no entrypoint: `docker run IMAGE swarm-activator …` and GitLab jobs run commands as given');
  t.same(info.Config.Healthcheck?.Test, ['CMD', 'node', '/app/dist/healthcheck.js']);
  t.match(info.Config.Labels, { 'org.opencontainers.image.title': 'swarm-activator', 'org.opencontainers.image.licenses': 'MIT' });
  t.match(info.Config.Labels['org.opencontainers.image.version'], /^\d+\.\d+\.\d+/);

  const probe = `const fs = require('node:fs');
    const has = (p) => fs.existsSync(p);
    console.log(JSON.stringify({
      uid: process.getuid(), app: fs.readdirSync('/app').sort(),
      typescript: has('/app/node_modules/typescript'), tap: has('/app/node_modules/tap'), fastify: has('/app/node_modules/fastify'),
      npmCache: has('/root/.npm') || has('/home/node/.npm'), sources: has('/app/src'),
    }));`;
  const r = await dockerRun([], ['node', '-e', probe]);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { uid: 1000, app: ['bin', 'dist', 'node_modules', 'package.json'], typescript: false, tap: false, fastify: true, npmCache: false, sources: false }, 'dist/, production node_modules and package.json only');
});

t.test('the CLI in the image: --version, and deploy/undeploy through the mounted socket with its docker CLI', async (t) => {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  const version = await dockerRun([], ['swarm-activator', '--version']);
  t.equal(version.stdout.trim(), pkg.version, version.stderr);
  const dockerVersion = await dockerRun([], ['docker', '--version']);
  t.match(dockerVersion.stdout, /^Docker version \d+\./, 'a docker CLI in the image');

  const app = `img${run}`;
  writeFileSync(join(dir, 'stack.yml'), `name: ${app}\nservices:\n  web:\n    image: sa/sample-app:dev\n    expose: ["80"]\n    deploy:\n      labels: [sa.test=1]\n`);
  chmodSync(join(dir, 'stack.yml'), 0o644);
  const mount = [...withSocket, '-v', `${dir}:/work:ro`, '-w', '/work'];
  const deploy = await dockerRun(mount, ['swarm-activator', 'deploy', 'stack.yml', '--env', 'img', '--domain', 'test.local', '--network', SA_NETWORK, '--resolve-image', 'never', '--json']);
  t.equal(deploy.code, 0, deploy.stderr);
  t.comment(`deploy in the image: ${Math.round(deploy.ms)} ms (container start included)`);
  t.match(JSON.parse(deploy.stdout), { stack: `${app}-img`, services: [{ name: `${app}-img_web`, state: 'asleep' }] });
  const undeploy = await dockerRun(mount, ['swarm-activator', 'undeploy', '--app', app, '--env', 'img', '--json']);
  t.equal(undeploy.code, 0, undeploy.stderr);
  t.match(JSON.parse(undeploy.stdout), { stack: `${app}-img`, existed: true });
  t.same(await docker.listServices({ filters: { label: [`com.docker.stack.namespace=${app}-img`] } }), [], 'removed');
});

/** openssl, quietly; throws with its output on failure. */
async function openssl(args: string[]): Promise<void> {
  const r = await exec('openssl', args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A Docker endpoint over TLS that demands a client certificate: the test engine's socket behind it. */
async function tlsEndpoint(certs: string): Promise<{ server: Server; port: number }> {
  const ext = join(certs, 'ext.cnf');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(certs, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test CA', '-keyout', join(certs, 'ca-key.pem'), '-out', join(certs, 'ca.pem')]);
  for (const [name, cnf] of [['server', ext], ['client', join(certs, 'client.cnf')]] as const) {
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', join(certs, `${name}-key.pem`), '-out', join(certs, `${name}.csr`)]);
    await openssl(['x509', '-req', '-in', join(certs, `${name}.csr`), '-CA', join(certs, 'ca.pem'), '-CAkey', join(certs, 'ca-key.pem'), '-CAcreateserial', '-days', '1', '-extfile', cnf, '-out', join(certs, `${name}.pem`)]);
  }
  const clientDir = join(certs, 'client');
  await exec('mkdir', ['-p', clientDir]);
  writeFileSync(join(clientDir, 'ca.pem'), readFileSync(join(certs, 'ca.pem')));
  writeFileSync(join(clientDir, 'cert.pem'), readFileSync(join(certs, 'client.pem')));
  writeFileSync(join(clientDir, 'key.pem'), readFileSync(join(certs, 'client-key.pem')));
  chmodSync(clientDir, 0o755);
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) chmodSync(join(clientDir, f), 0o644); // read by uid 1000 in the image

  const server = createServer(
    { key: readFileSync(join(certs, 'server-key.pem')), cert: readFileSync(join(certs, 'server.pem')), ca: readFileSync(join(certs, 'ca.pem')), requestCert: true, rejectUnauthorized: true },
    (tls) => {
      const upstream = connect(socketPath);
      tls.pipe(upstream).pipe(tls);
      const end = () => { tls.destroy(); upstream.destroy(); };
      tls.on('error', end);
      upstream.on('error', end);
    },
  );
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port };
}

t.test('DOCKER_HOST=tcp://… with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: the CLI and its docker CLI both use TLS', async (t) => {
  const certs = join(dir, 'certs');
  await exec('mkdir', ['-p', certs]);
  const { server, port } = await tlsEndpoint(certs);
  t.teardown(() => void server.close());
  const tlsEnv = ['-e', `DOCKER_HOST=tcp://127.0.0.1:${port}`, '-e', 'DOCKER_TLS_VERIFY=1', '-e', 'DOCKER_CERT_PATH=/certs', '-v', `${join(certs, 'client')}:/certs:ro`];
  const net = ['--network', 'host']; // the endpoint listens on the host's loopback

  const ls = await dockerRun([...net, ...tlsEnv], ['swarm-activator', 'ls', '--json']);
  t.equal(ls.code, 0, ls.stderr);
  t.ok(Array.isArray((JSON.parse(ls.stdout) as { apps: unknown[] }).apps), 'ls through TLS (dockerode)');

  const app = `tls${run}`;
  writeFileSync(join(dir, 'tls.yml'), `name: ${app}\nservices:\n  web:\n    image: sa/sample-app:dev\n    expose: ["80"]\n    deploy:\n      labels: [sa.test=1]\n`);
  chmodSync(join(dir, 'tls.yml'), 0o644);
  const files = ['-v', `${dir}:/work:ro`, '-w', '/work'];
  const deploy = await dockerRun([...net, ...tlsEnv, ...files], ['swarm-activator', 'deploy', 'tls.yml', '--env', 'tls', '--domain', 'test.local', '--network', SA_NETWORK, '--resolve-image', 'never', '--json']);
  t.equal(deploy.code, 0, deploy.stderr);
  t.match(JSON.parse(deploy.stdout), { stack: `${app}-tls` }, 'deploy through TLS (docker stack deploy in the image)');
  const undeploy = await dockerRun([...net, ...tlsEnv, ...files], ['swarm-activator', 'undeploy', '--app', app, '--env', 'tls', '--json']);
  t.equal(undeploy.code, 0, undeploy.stderr);

  // The endpoint really demands TLS and a client certificate: without the variables it fails.
  const plain = await dockerRun([...net, '-e', `DOCKER_HOST=tcp://127.0.0.1:${port}`], ['swarm-activator', 'ls', '--json']);
  t.equal(plain.code, 1, 'without DOCKER_TLS_VERIFY: refused');
  t.match(JSON.parse(plain.stdout), { error: /Docker API unreachable|socket hang up|ECONNRESET|EPROTO/ });
});

t.test('the Dockerfile builds from a clean clone (no dist/, node_modules/ or build/), as CI checks out', async (t) => {
  const root = join(import.meta.dirname, '..', '..');
  const clone = join(dir, 'clone');
  const git = await exec('git', ['clone', '-q', '--no-hardlinks', root, clone]);
  t.equal(git.code, 0, git.stderr);
  const tag = `sa-clean/swarm-activator:${run}`;
  t.teardown(() => docker.getImage(tag).remove().catch(() => undefined));
  // The same offline build scripts/build-images.sh makes swarm-activator:dev with, on the clone.
  const build = await exec('bash', [join(root, 'scripts', 'build-images.sh')], { ...hostEnv, SA_ACTIVATOR_CONTEXT: clone, SA_ACTIVATOR_TAG: tag }, 600_000);
  t.equal(build.code, 0, `${build.stdout}\n${build.stderr}`);
  t.comment(build.stdout.split('\n').find((l) => l.includes(tag)) ?? '');
  const version = await exec('docker', ['run', '--rm', tag, 'swarm-activator', '--version']);
  t.equal(version.code, 0, version.stderr);
});

t.test("the image's HEALTHCHECK passes for a running activator", async (t) => {
  const activator = await startActivator({ name: `${run}-activator`, run });
  t.teardown(() => activator.stop());
  const health = await waitFor(
    'container healthy',
    async () => {
      const [c] = await docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${activator.name}`] } });
      if (!c) return undefined;
      const state = ((await docker.getContainer(c.Id).inspect()) as { State: { Health?: { Status: string; Log?: Array<{ ExitCode: number; Output: string }> } } }).State.Health;
      return state?.Status === 'healthy' ? state : undefined;
    },
    40_000,
    500,
  );
  t.match(health.Log?.at(-1), { ExitCode: 0, Output: /\/healthz: HTTP 200/ });
});
