/**
 * The Docker API proxy of stack/activator.yml (sa/docker-api-proxy:dev: HAProxy with the
 * allow-list stack/docker-api-proxy.cfg) as a Swarm service on the test network, with the Docker
 * socket, reachable by its name (dnsrr: no IPVS here) and on a host-mode port for the test's own
 * checks. An activator started with ACTIVATOR_DOCKER_HOST=proxy.dockerHost and no socket uses it.
 */
import Docker from 'dockerode';
import { freePort, localSwarm, removeService, runningTasks, serviceLogs, waitFor } from './swarm.js';

export interface DockerApiProxy {
  name: string;
  /** For the activator: tcp://<name>:2375 on the overlay network. */
  dockerHost: string;
  /** For the test, from the host. */
  url: string;
  /** 0 cuts the Docker API off for the activator (its name stops resolving); 1 brings it back. */
  scale(replicas: number): Promise<void>;
  logs(): Promise<string>;
  remove(): Promise<void>;
}

export async function startDockerApiProxy(name: string, run: string): Promise<DockerApiProxy> {
  const on = localSwarm;
  const port = await freePort();
  const socketPath = new URL(on.dockerHost).pathname;
  await removeService(name);
  await on.docker.createService({
    Name: name,
    Labels: { 'sa.test': '1', 'sa.run': `${run}-infra` },
    TaskTemplate: {
      ContainerSpec: { Image: 'sa/docker-api-proxy:dev', Mounts: [{ Type: 'bind', Source: socketPath, Target: '/var/run/docker.sock' }], StopGracePeriod: 1e9 },
      RestartPolicy: { Condition: 'any', Delay: 200e6 },
      Networks: [{ Target: on.network }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Mode: 'dnsrr', Ports: [{ Protocol: 'tcp', TargetPort: 2375, PublishedPort: port, PublishMode: 'host' }] },
  } as unknown as Docker.CreateServiceOptions);
  const url = `http://127.0.0.1:${port}`;
  const answering = () => waitFor(`${name} answering`, async () => (await fetch(`${url}/_ping`)).ok, 30_000, 100);
  await answering();
  return {
    name,
    dockerHost: `tcp://${name}:2375`,
    url,
    async scale(replicas) {
      const svc = on.docker.getService(name);
      const spec = (await svc.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
      await svc.update({ _query: { version: spec.Version.Index }, _body: { ...spec.Spec, Mode: { Replicated: { Replicas: replicas } } } });
      if (replicas === 0) {
        await waitFor(`${name} gone`, async () => (await on.docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${name}`] } })).length === 0, 30_000, 100);
      } else {
        await waitFor(`${name} running`, async () => (await runningTasks(name)).length > 0, 30_000, 100);
        await answering();
      }
    },
    logs: () => serviceLogs(name, 5000),
    remove: () => removeService(name),
  };
}
