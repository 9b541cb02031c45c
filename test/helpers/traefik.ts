/**
 * The real edge of the test swarm: Traefik (stack/traefik.yml itself, deployed with
 * `docker stack deploy`, image sa/traefik:<version> built FROM scratch by
 * scripts/build-tool-images.sh) and Pebble, Let's Encrypt's test CA, with its challenge DNS server
 * (pebble-challtestsrv), as Swarm services on the shared network `traefik-public`.
 *
 * Only what a test must is overridden: the image (same Traefik version as production), the ACME CA
 * server (Pebble), the published ports (free host ports, reached on loopback or the node's address),
 * the Docker socket path, and test/fixtures/traefik/pebble.yml (trust Pebble's HTTPS certificate).
 * Traefik's `le` resolver really obtains certificates from Pebble over HTTP-01: Pebble asks
 * challtestsrv for the app's host, which answers with Traefik's task address.
 * Clients trust Pebble's root only (fetched from Pebble's management endpoint), and send the real
 * Host and TLS SNI, as a browser would.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import Docker from 'dockerode';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { parse as parseYaml } from 'yaml';
import { DEPLOY_DEFAULTS } from '../../src/deploy/label-stack.js';
import { startActivator, type RunningActivator } from './activator.js';
import type { Reply } from './http.js';
import { freePort, localSwarm, removeService, runningTasks, serviceLogs, waitFor, type SwarmTarget } from './swarm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const toolsScript = readFileSync(join(ROOT, 'scripts', 'tools.sh'), 'utf8');
const pinned = (name: string): string => {
  const m = new RegExp(`^${name}=(\\S+)`, 'm').exec(toolsScript);
  if (!m?.[1]) throw new Error(`scripts/tools.sh has no ${name}`);
  return m[1];
};
export const TRAEFIK_VERSION = pinned('SA_TRAEFIK_VERSION');
export const PEBBLE_VERSION = pinned('SA_PEBBLE_VERSION');
export const TRAEFIK_IMAGE = `sa/traefik:${TRAEFIK_VERSION}`;
export const PEBBLE_IMAGE = `sa/pebble:${PEBBLE_VERSION}`;
const TOOLS_DIR = process.env.SA_TOOLS_DIR ?? '/var/tmp/swarm-activator-tools';
/** Pebble's test root for its own HTTPS API (the ACME directory and the management port). */
export const PEBBLE_MINICA = join(TOOLS_DIR, `pebble-${PEBBLE_VERSION}`, 'certs', 'pebble.minica.pem');
/** The network Traefik's swarm provider reads, and deploy attaches apps to. */
export const EDGE_NETWORK = DEPLOY_DEFAULTS.network;

/** The same swarm, with services attached to Traefik's network. */
export const onEdgeNetwork = (on: SwarmTarget = localSwarm): SwarmTarget => ({ ...on, network: EDGE_NETWORK });

/** Labels that make an activator the Traefik service "swarm-activator" that the catch-all routers use. */
export const ACTIVATOR_TRAEFIK_LABELS: Record<string, string> = {
  'traefik.enable': 'true',
  'traefik.swarm.network': EDGE_NETWORK,
  'traefik.http.services.swarm-activator.loadbalancer.server.port': '8080',
};

export interface CertificateSeen {
  subject: string;
  issuer: string;
  /** Whether the chain validates against Pebble's root for this host name. */
  authorized: boolean;
  authorizationError: string | undefined;
  fingerprint256: string;
}

/** One line of Traefik's access log (common log format, which names the router and server). */
export interface AccessLine {
  method: string;
  path: string;
  status: number;
  router: string;
  serverUrl: string;
  ms: number;
}

export interface EdgeRequest {
  scheme?: 'http' | 'https';
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** TLS SNI; defaults to the Host. */
  servername?: string;
  /** Accept a certificate that does not validate against Pebble's root (to look at it). */
  insecure?: boolean;
  timeoutMs?: number;
}

export interface Edge {
  stack: string;
  /** The Swarm service running Traefik. */
  service: string;
  address: string;
  httpPort: number;
  httpsPort: number;
  /** Pebble's root certificate (PEM), the only one the test clients trust. */
  pebbleRoot: string;
  /** Where an activator on EDGE_NETWORK reads Traefik's metrics (as in stack/activator.yml). */
  metricsUrl: string;
  /** Traefik's task address on EDGE_NETWORK (requests it forwards come from there). */
  taskIp: string;
  request(host: string, path: string, opts?: EdgeRequest): Promise<Reply>;
  websocket(host: string, path: string): Promise<WebSocket>;
  certificate(host: string): Promise<CertificateSeen>;
  /** Waits until Traefik serves `host` a certificate that validates against Pebble's root. */
  waitForCertificate(host: string, timeoutMs?: number): Promise<CertificateSeen>;
  accessLog(): Promise<AccessLine[]>;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function ensureNetwork(on: SwarmTarget): Promise<void> {
  try {
    await on.docker.getNetwork(EDGE_NETWORK).inspect();
  } catch {
    await on.docker.createNetwork({ Name: EDGE_NETWORK, Driver: 'overlay', Attachable: true, Labels: { 'sa.test': '1' } }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 409) throw err;
    });
  }
}

async function createToolService(on: SwarmTarget, name: string, alias: string, command: string[], env: string[], port: { target: number; published: number }, constraints: string[]): Promise<void> {
  await removeService(name, on);
  await on.docker.createService({
    Name: name,
    Labels: { 'sa.test': '1' },
    TaskTemplate: {
      ContainerSpec: { Image: PEBBLE_IMAGE, Command: command, Env: env, StopGracePeriod: 1e9 },
      RestartPolicy: { Condition: 'none' },
      // dnsrr: the alias resolves to the task address (no VIPs on this machine).
      Networks: [{ Target: EDGE_NETWORK, Aliases: [alias] }],
      ...(constraints.length > 0 ? { Placement: { Constraints: constraints } } : {}),
    },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Mode: 'dnsrr', Ports: [{ Protocol: 'tcp', TargetPort: port.target, PublishedPort: port.published, PublishMode: 'host' }] },
  } as unknown as Docker.CreateServiceOptions);
}

function peerCertificate(address: string, port: number, servername: string, ca: string): Promise<CertificateSeen> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: address, port, servername, ca, rejectUnauthorized: false, timeout: 10_000 }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      const err = socket.authorizationError as Error | string | null;
      resolve({
        subject: String(cert.subject?.CN ?? JSON.stringify(cert.subject)),
        issuer: String(cert.issuer?.CN ?? JSON.stringify(cert.issuer)),
        authorized: socket.authorized,
        authorizationError: err ? String(err) : undefined,
        fingerprint256: cert.fingerprint256,
      });
      socket.end();
    });
    socket.once('timeout', () => socket.destroy(new Error(`TLS handshake with ${address}:${port} (SNI ${servername}) timed out`)));
    socket.once('error', reject);
  });
}

const ACCESS_LINE = /"(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "[^"]*" \d+ "([^"]*)" "([^"]*)" (\d+)ms/;

/**
 * Starts Pebble, challtestsrv and Traefik (stack/traefik.yml) on `on`, with Traefik pinned to
 * `traefikNode` (by the file's own placement label) when given.
 */
export async function startEdge(opts: { run: string; on?: SwarmTarget; traefikNodeId?: string; constraints?: string[]; provider: { url: string; token: string } }): Promise<Edge> {
  const on = onEdgeNetwork(opts.on ?? localSwarm);
  const constraints = opts.constraints ?? [];
  const stack = `${opts.run}-edge`;
  const service = `${stack}_traefik`;
  const challName = `${opts.run}-challtestsrv`;
  const pebbleName = `${opts.run}-pebble`;
  const [httpPort, httpsPort, challPort, pebblePort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const minica = readFileSync(PEBBLE_MINICA, 'utf8');
  const pebbleAgent = new Agent({ connect: { ca: minica, servername: 'pebble' } });
  const plainAgent = new Agent({ keepAliveTimeout: 1000 });
  const agents = new Map<string, Agent>();
  const dockerEnv = { ...process.env, DOCKER_HOST: on.dockerHost };

  const cleanup = async () => {
    await run('docker', ['stack', 'rm', stack], dockerEnv).catch(() => undefined);
    await waitFor(`${stack} containers gone`, async () => (await on.docker.listContainers({ all: true, filters: { label: [`com.docker.stack.namespace=${stack}`] } })).length === 0, 30_000, 200).catch(() => undefined);
    await on.docker.getVolume(`${stack}_traefik-certificates`).remove().catch(() => undefined);
    await removeService(pebbleName, on);
    await removeService(challName, on);
    for (const a of agents.values()) await a.close();
    await pebbleAgent.close();
    await plainAgent.close();
  };

  try {
    await ensureNetwork(on);
    await createToolService(on, challName, 'challtestsrv',
      ['/pebble-challtestsrv', '-defaultIPv4', '', '-defaultIPv6', '', '-http01', '', '-https01', '', '-tlsalpn01', '', '-doh', '', '-dnsserver', ':8053', '-management', ':8055'],
      [], { target: 8055, published: challPort }, constraints);
    await createToolService(on, pebbleName, 'pebble',
      ['/pebble', '-config', '/etc/pebble/config.json', '-dnsserver', 'challtestsrv:8053'],
      // No random validation delays or nonce rejections: the tests measure Traefik, not Pebble's chaos.
      ['PEBBLE_VA_NOSLEEP=1', 'PEBBLE_WFE_NONCEREJECT=0'], { target: 15000, published: pebblePort }, constraints);

    // Traefik: the production stack file; placement by its own node label.
    const nodeId = opts.traefikNodeId ?? ((await on.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    await run('docker', ['node', 'update', '--label-add', 'traefik-public.certificates=true', nodeId], dockerEnv);
    await run('docker', ['stack', 'deploy', '--detach=true', '-c', 'stack/traefik.yml', '-c', 'test/fixtures/traefik/pebble.yml', stack], {
      ...dockerEnv,
      TRAEFIK_IMAGE,
      ACME_EMAIL: 'ops@sa-test.example.com',
      ACME_CA_SERVER: 'https://pebble:14000/dir',
      TRAEFIK_HTTP_PORT: String(httpPort),
      TRAEFIK_HTTPS_PORT: String(httpsPort),
      DOCKER_SOCKET: new URL(on.dockerHost).pathname,
      PEBBLE_MINICA,
      ACTIVATOR_PROVIDER_URL: opts.provider.url,
      ACTIVATOR_PROVIDER_TOKEN: opts.provider.token,
    });

    const pebbleRoot = await waitFor('Pebble root certificate', async () => {
      const res = await request(`https://${on.address}:${pebblePort}/roots/0`, { dispatcher: pebbleAgent });
      const text = await res.body.text();
      return res.statusCode === 200 && text.includes('BEGIN CERTIFICATE') ? text : undefined;
    }, 60_000, 200);
    const taskIp = await waitFor('Traefik task address', async () => (await runningTasks(service, on))[0]?.ip, 60_000, 200);
    // challtestsrv answers every A query with Traefik's address: Pebble's HTTP-01 checks reach Traefik.
    await waitFor('challtestsrv default address set', async () => {
      const res = await request(`http://${on.address}:${challPort}/set-default-ipv4`, { method: 'POST', body: JSON.stringify({ ip: taskIp }), dispatcher: plainAgent });
      await res.body.text();
      return res.statusCode === 200;
    }, 30_000, 200);
    await waitFor('Traefik answering', async () => {
      const res = await request(`http://${on.address}:${httpPort}/`, { headers: { host: 'probe.invalid' }, dispatcher: plainAgent });
      await res.body.text();
      return res.statusCode > 0;
    }, 60_000, 200);

    const agentFor = (servername: string, insecure: boolean) => {
      const key = `${servername}|${insecure}`;
      let a = agents.get(key);
      if (!a) {
        a = new Agent({ keepAliveTimeout: 1000, connect: { servername, ca: pebbleRoot, rejectUnauthorized: !insecure } });
        agents.set(key, a);
      }
      return a;
    };

    const edge: Edge = {
      stack,
      service,
      address: on.address,
      httpPort,
      httpsPort,
      pebbleRoot,
      metricsUrl: 'http://traefik:8082/metrics',
      taskIp,
      async request(host, path, r = {}) {
        const scheme = r.scheme ?? 'https';
        const port = scheme === 'https' ? httpsPort : httpPort;
        const started = performance.now();
        const res = await request(`${scheme}://${on.address}:${port}${path}`, {
          method: (r.method ?? 'GET') as 'GET',
          headers: { host, ...r.headers },
          ...(r.body !== undefined ? { body: r.body } : {}),
          dispatcher: scheme === 'https' ? agentFor(r.servername ?? host.replace(/:\d+$/, ''), r.insecure ?? false) : plainAgent,
          headersTimeout: r.timeoutMs ?? 60_000,
          bodyTimeout: r.timeoutMs ?? 60_000,
        });
        const body = await res.body.text();
        const headers = res.headers as Record<string, string | string[] | undefined>;
        return {
          status: res.statusCode,
          headers,
          header: (name: string) => {
            const v = headers[name.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          },
          text: () => body,
          json: <T>() => JSON.parse(body) as T,
          ms: performance.now() - started,
        };
      },
      async websocket(host, path) {
        const ws = new WebSocket(`wss://${on.address}:${httpsPort}${path}`, { headers: { host }, ca: pebbleRoot, servername: host } as WebSocket.ClientOptions);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        return ws;
      },
      certificate: (host) => peerCertificate(on.address, httpsPort, host, pebbleRoot),
      waitForCertificate: (host, timeoutMs = 60_000) =>
        waitFor(`a certificate for ${host} that validates against Pebble's root`, async () => {
          const c = await peerCertificate(on.address, httpsPort, host, pebbleRoot);
          return c.authorized ? c : undefined;
        }, timeoutMs, 250),
      async accessLog() {
        return (await serviceLogs(service, 5000, on))
          .split('\n')
          .map((l) => ACCESS_LINE.exec(l))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => ({ method: m[1] as string, path: m[2] as string, status: Number(m[3]), router: m[4] as string, serverUrl: m[5] as string, ms: Number(m[6]) }));
      },
      logs: () => serviceLogs(service, 500, on),
      stop: cleanup,
    };
    return edge;
  } catch (err) {
    const logs = await serviceLogs(service, 100, on);
    const pebbleLogs = await serviceLogs(pebbleName, 50, on);
    await cleanup();
    throw new Error(`${(err as Error).message}\nTraefik logs:\n${logs}\nPebble logs:\n${pebbleLogs}`, { cause: err });
  }
}

/** Traefik + Pebble, and an activator behind Traefik's catch-all that reads Traefik's metrics. */
export interface EdgeRig {
  edge: Edge;
  activator: RunningActivator;
  /** The activator's task address on EDGE_NETWORK. */
  activatorIp: string;
  /** Where apps go: the same swarm, on EDGE_NETWORK. */
  on: SwarmTarget;
  /** Who connected to the sample app for this answer (its echo's remoteAddress). */
  servedBy(reply: Reply): 'activator' | 'traefik' | 'none';
  /** The token Traefik sends to the activator's provider endpoint. */
  providerToken: string;
  /** Traefik's own API (api@internal, through a test-only router on the activator's labels): GET path → JSON. */
  traefikApi<T>(path: string): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** A test-only router to Traefik's API (the production file has none). */
const TRAEFIK_API_HOST = 'traefik-api.invalid';
const TRAEFIK_API_LABELS: Record<string, string> = {
  'traefik.http.routers.sa-test-traefik-api.rule': `Host(\`${TRAEFIK_API_HOST}\`)`,
  'traefik.http.routers.sa-test-traefik-api.priority': '10000',
  'traefik.http.routers.sa-test-traefik-api.entrypoints': 'https',
  'traefik.http.routers.sa-test-traefik-api.tls': 'true',
  'traefik.http.routers.sa-test-traefik-api.service': 'api@internal',
};

/**
 * One rig per swarm at a time, across test processes (tap runs files in parallel): every rig's
 * activator is the Traefik service "swarm-activator" that the catch-all routers name, and every
 * Traefik reads every service of the swarm, so two rigs would share each other's activators.
 * A lock directory per engine, holding the owner's pid (a dead owner's lock is taken over).
 */
async function lockSwarm(dockerHost: string, timeoutMs = 15 * 60_000): Promise<() => void> {
  const dir = `/var/tmp/swarm-activator-edge-${createHash('sha1').update(dockerHost).digest('hex').slice(0, 10)}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // being created right now, or left without a pid: stale after a few seconds
        if (Date.now() - (statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 5000) rmSync(dir, { recursive: true, force: true });
      }
      const alive = owner > 0 && (() => {
        try {
          process.kill(owner, 0);
          return true;
        } catch {
          return false;
        }
      })();
      if (owner > 0 && !alive) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another test's Traefik rig (pid ${owner}) still holds ${dir} after ${timeoutMs} ms`, { cause: err });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const release = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', release);
  return release;
}

/** Where the activator reads the Traefik provider's token (a Swarm secret, as in stack/activator.yml). */
export const PROVIDER_TOKEN_PATH = '/run/secrets/activator-provider-token';

/**
 * `provider: false`: the activator runs without its Traefik provider (no token; Traefik's polls of
 * its endpoint get 404 and Traefik keeps an empty configuration), as a deployment that has not
 * turned it on.
 */
export async function startRig(opts: { run: string; on?: SwarmTarget; env?: Record<string, string>; traefikNodeId?: string; edgeConstraints?: string[]; activatorConstraints?: string[]; provider?: boolean }): Promise<EdgeRig> {
  const on = onEdgeNetwork(opts.on ?? localSwarm);
  const unlock = await lockSwarm(on.dockerHost);
  const activatorName = `${opts.run}-activator`;
  const providerToken = randomBytes(24).toString('hex');
  const withProvider = opts.provider !== false;
  let edge: Edge;
  try {
    edge = await startEdge({
      run: opts.run,
      on,
      // tasks.<service>: every task's address (no VIPs on this machine), as stack/traefik.yml does.
      provider: { url: `http://tasks.${activatorName}:8081/traefik/dynamic-config`, token: providerToken },
      ...(opts.traefikNodeId ? { traefikNodeId: opts.traefikNodeId } : {}),
      ...(opts.edgeConstraints ? { constraints: opts.edgeConstraints } : {}),
    });
  } catch (err) {
    unlock();
    throw err;
  }
  let activator: RunningActivator | undefined;
  try {
    activator = await startActivator({
      name: activatorName,
      run: opts.run,
      on,
      labels: { ...ACTIVATOR_TRAEFIK_LABELS, ...TRAEFIK_API_LABELS },
      ...(opts.activatorConstraints ? { constraints: opts.activatorConstraints } : {}),
      ...(withProvider ? { secrets: { 'activator-provider-token': providerToken } } : {}),
      env: { ACTIVATOR_TRAEFIK_METRICS_URL: edge.metricsUrl, ACTIVATOR_TRAEFIK_SWARM_REFRESH: '5s', ...(withProvider ? { ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE: PROVIDER_TOKEN_PATH } : {}), ...opts.env },
    });
    const act = activator;
    const activatorIp = await waitFor('activator task address', async () => (await runningTasks(act.name, on))[0]?.ip, 30_000, 100);
    // The catch-all answers once Traefik has read the activator's labels (swarm provider poll: 5 s).
    await waitFor('the catch-all routes to the activator', async () => (await edge.request('nobody.invalid', '/', { insecure: true })).header('x-activator-error') === 'SA_UNKNOWN_HOST', 30_000, 250);
    return {
      edge,
      activator: act,
      activatorIp,
      on,
      servedBy(reply) {
        if (reply.status !== 200 || !reply.header('content-type')?.startsWith('application/json')) return 'none';
        const from = reply.json<{ remoteAddress?: string }>().remoteAddress;
        return from === activatorIp ? 'activator' : from === edge.taskIp ? 'traefik' : 'none';
      },
      providerToken,
      async traefikApi<T>(path: string) {
        const r = await edge.request(TRAEFIK_API_HOST, path, { insecure: true });
        return { status: r.status, body: (r.status === 200 ? r.json<T>() : r.text()) as T };
      },
      async stop() {
        await act.stop();
        await edge.stop();
        unlock();
      },
    };
  } catch (err) {
    await activator?.stop();
    await edge.stop();
    unlock();
    throw err;
  }
}

/**
 * The seed deployment's Traefik labels (/work/shared/seed-labels.txt) for one app, in v3 form, plus
 * what exposedByDefault=false and the shared network ask for; `middlewares` are added to the https
 * router (before the shared redirect).
 */
export function seedLabels(name: string, host: string, middlewares: string[] = []): Record<string, string> {
  const mw = [...middlewares, 'non-www-redirect-secure@swarm'].join(',');
  return {
    'traefik.enable': 'true',
    'traefik.swarm.network': EDGE_NETWORK,
    [`traefik.http.routers.${name}-http.entrypoints`]: 'http',
    [`traefik.http.services.${name}.loadbalancer.server.port`]: '80',
    [`traefik.http.routers.${name}-http.middlewares`]: 'non-www-redirect-secure@swarm',
    [`traefik.http.routers.${name}-https.middlewares`]: mw,
    [`traefik.http.routers.${name}-https.entrypoints`]: 'https',
    [`traefik.http.routers.${name}-https.tls`]: 'true',
    [`traefik.http.routers.${name}-https.tls.certresolver`]: 'le',
    [`traefik.http.routers.${name}-http.rule`]: `Host(\`${host}\`)`,
    [`traefik.http.routers.${name}-https.rule`]: `Host(\`${host}\`)`,
  };
}

/**
 * Without Traefik in a test, the middlewares that stack/traefik.yml defines on Traefik's own
 * service (the shared redirect) exist nowhere, and an app that references them fails closed (a type
 * the activator cannot find may refuse). This stands in for Traefik's service: a service at 0
 * replicas carrying the file's `traefik.http.middlewares.*` labels, as `docker stack deploy` reads
 * them ($$ is a literal $). Returns its remover.
 */
export async function startSharedMiddlewares(run: string, on: SwarmTarget = localSwarm): Promise<() => Promise<void>> {
  const doc = parseYaml(readFileSync(join(ROOT, 'stack', 'traefik.yml'), 'utf8')) as { services: { traefik: { deploy: { labels: string[] } } } };
  const labels: Record<string, string> = { 'sa.test': '1', 'sa.run': run };
  for (const line of doc.services.traefik.deploy.labels) {
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    if (key.startsWith('traefik.http.middlewares.')) labels[key] = line.slice(eq + 1).replaceAll('$$', '$');
  }
  const name = `${run}-traefik-labels`;
  await on.docker.createService({
    Name: name,
    Labels: labels,
    TaskTemplate: { ContainerSpec: { Image: 'sa/sample-app:dev' } },
    Mode: { Replicated: { Replicas: 0 } },
    EndpointSpec: { Mode: 'dnsrr' },
  } as unknown as Docker.CreateServiceOptions);
  return () => removeService(name, on);
}
