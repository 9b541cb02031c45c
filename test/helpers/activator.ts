/**
 * Runs the activator the way production does: the swarm-activator:dev image as a Swarm service on
 * the shared overlay network, Docker socket mounted, reached through host-mode published ports,
 * with its operator token as a Swarm secret (as stack/activator.yml does).
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import Docker from 'dockerode';
import { freePort, localSwarm, removeService, serviceLogs, waitFor, type SwarmTarget } from './swarm.js';

export interface ActivatorOptions {
  name: string;
  /** Only services labelled sa.run=<run> are managed by this activator. */
  run: string;
  env?: Record<string, string>;
  publishPort?: number;
  adminPort?: number;
  image?: string;
  /** Placement constraints, e.g. node.labels.sa.node==n1. */
  constraints?: string[];
  /** More service labels, e.g. Traefik's (test/helpers/traefik.ts). */
  labels?: Record<string, string>;
  on?: SwarmTarget;
  /**
   * The operator token, given to the activator as the Swarm secret <name>-admin-token at
   * /run/secrets/activator-admin-token (ACTIVATOR_ADMIN_TOKEN_FILE). Default: a fresh random one.
   */
  adminToken?: string;
  /** Bind-mount the Docker socket (default true); false with ACTIVATOR_DOCKER_HOST pointing at the API proxy. */
  dockerSocket?: boolean;
  /** More Swarm secrets, by file name under /run/secrets/ → value (e.g. the Traefik provider token). */
  secrets?: Record<string, string>;
}

/** Where the secret lands in the activator's container. */
export const ADMIN_TOKEN_PATH = '/run/secrets/activator-admin-token';

export interface RunningActivator {
  name: string;
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  /** The operator token of this activator's admin API. */
  adminToken: string;
  /** `Authorization: Bearer <adminToken>`, plus any headers given. */
  adminHeaders(extra?: Record<string, string>): Record<string, string>;
  /** fetch() on the admin URL with the operator token. */
  adminFetch(path: string, init?: RequestInit): Promise<Response>;
  logs(): Promise<string>;
  /** Parsed JSON log lines. */
  logLines(): Promise<Array<Record<string, unknown>>>;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  /** Waits until the activator's registry has the service (discovery is event-driven, not instant). */
  waitForApp(service: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startActivator(opts: ActivatorOptions): Promise<RunningActivator> {
  const port = opts.publishPort ?? (await freePort());
  const adminPort = opts.adminPort ?? (await freePort());
  const on = opts.on ?? localSwarm;
  const socketPath = new URL(on.dockerHost).pathname;
  const env: Record<string, string> = {
    ACTIVATOR_NETWORK: on.network,
    ACTIVATOR_SELECTOR: `sa.run=${opts.run}`,
    ACTIVATOR_LOG_LEVEL: 'info',
    ACTIVATOR_ADMIN_TOKEN_FILE: ADMIN_TOKEN_PATH,
    ...opts.env,
  };
  const adminToken = opts.adminToken ?? randomBytes(24).toString('hex');
  const secretName = `${opts.name}-admin-token`;
  await removeService(opts.name, on);
  await removeSecret(on, secretName);
  const secret = (await on.docker.createSecret({ Name: secretName, Labels: { 'sa.test': '1' }, Data: Buffer.from(adminToken).toString('base64') })) as { id: string };
  const extraSecrets: Array<{ name: string; file: string; id: string }> = [];
  for (const [file, value] of Object.entries(opts.secrets ?? {})) {
    const name = `${opts.name}-${file}`;
    await removeSecret(on, name);
    const made = (await on.docker.createSecret({ Name: name, Labels: { 'sa.test': '1' }, Data: Buffer.from(value).toString('base64') })) as { id: string };
    extraSecrets.push({ name, file, id: made.id });
  }
  const removeSecrets = async () => {
    await removeSecret(on, secretName);
    for (const x of extraSecrets) await removeSecret(on, x.name);
  };
  await on.docker.createService({
    Name: opts.name,
    Labels: { 'sa.test': '1', 'sa.run-activator': opts.run, ...opts.labels },
    TaskTemplate: {
      ContainerSpec: {
        Image: opts.image ?? 'swarm-activator:dev',
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Mounts: opts.dockerSocket === false ? [] : [{ Type: 'bind', Source: socketPath, Target: '/var/run/docker.sock' }],
        Secrets: [
          { SecretID: secret.id, SecretName: secretName, File: { Name: 'activator-admin-token', UID: '0', GID: '0', Mode: 0o444 } },
          ...extraSecrets.map((x) => ({ SecretID: x.id, SecretName: x.name, File: { Name: x.file, UID: '0', GID: '0', Mode: 0o444 } })),
        ],
        // The image runs as an unprivileged user: the socket's group lets it use the Docker API.
        ...(opts.dockerSocket === false ? {} : { Groups: [String(statSync(socketPath).gid)] }),
        StopGracePeriod: 5e9,
      },
      RestartPolicy: { Condition: 'none' },
      Networks: [{ Target: on.network }],
      ...(opts.constraints ? { Placement: { Constraints: opts.constraints } } : {}),
    },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: {
      Ports: [
        { Protocol: 'tcp', TargetPort: 8080, PublishedPort: port, PublishMode: 'host' },
        { Protocol: 'tcp', TargetPort: 8081, PublishedPort: adminPort, PublishMode: 'host' },
      ],
    },
  } as unknown as Docker.CreateServiceOptions);

  const adminUrl = `http://${on.address}:${adminPort}`;
  try {
    await waitFor('activator readiness', async () => (await fetch(`${adminUrl}/readyz`)).ok, 60_000, 100);
  } catch (err) {
    const logs = await serviceLogs(opts.name, 200, on);
    await removeService(opts.name, on);
    await removeSecrets();
    throw new Error(`${(err as Error).message}\nactivator logs:\n${logs}`, { cause: err });
  }

  const logs = () => serviceLogs(opts.name, 2000, on);
  const adminHeaders = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${adminToken}`, ...extra });
  const adminFetch = (path: string, init: RequestInit = {}) => fetch(`${adminUrl}${path}`, { ...init, headers: adminHeaders((init.headers as Record<string, string> | undefined) ?? {}) });
  return {
    name: opts.name,
    port,
    adminPort,
    url: `http://${on.address}:${port}`,
    adminUrl,
    adminToken,
    adminHeaders,
    adminFetch,
    logs,
    async logLines() {
      return (await logs())
        .split('\n')
        .map((l) => {
          const i = l.indexOf('{');
          try {
            return i >= 0 ? (JSON.parse(l.slice(i)) as Record<string, unknown>) : undefined;
          } catch {
            return undefined;
          }
        })
        .filter((x): x is Record<string, unknown> => x !== undefined);
    },
    async metric(name, labels = {}) {
      const text = await (await adminFetch('/metrics')).text();
      let total: number | undefined;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (!m || m[1] !== name) continue;
        const lbls = m[2] ?? '';
        if (Object.entries(labels).every(([k, v]) => lbls.includes(`${k}="${v}"`))) total = (total ?? 0) + Number(m[3]);
      }
      return total;
    },
    async waitForApp(service) {
      await waitFor(`${service} discovered`, async () => {
        const apps = (await (await adminFetch('/api/apps')).json()) as Array<{ service: string }>;
        return apps.some((a) => a.service === service);
      }, 10_000, 20);
    },
    async stop() {
      await removeService(opts.name, on);
      // Host-mode ports are only free once the task's container is gone.
      await waitFor(`${opts.name} removal`, async () => (await on.docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${opts.name}`] } })).length === 0, 30_000, 200).catch(() => undefined);
      await removeSecrets();
    },
  };
}

async function removeSecret(on: SwarmTarget, name: string): Promise<void> {
  await on.docker.getSecret(name).remove().catch(() => undefined);
}
