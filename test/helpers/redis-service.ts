/**
 * A Redis of a test's own, inside the swarm as in stack/activator.yml: a Swarm service
 * (sa/redis:dev, Debian's redis-server) on the shared overlay network, reached by its service
 * name. Activators started with ACTIVATOR_REDIS_URL=<url> share it (test/e2e/ha*.test.ts).
 */
import Docker from 'dockerode';
import { SA_NETWORK, docker, removeService, runningTasks, waitFor } from './swarm.js';

export interface RedisService {
  name: string;
  /** What an activator on the network sets as ACTIVATOR_REDIS_URL. */
  url: string;
  start(): Promise<void>;
  /** Removes the service and waits for its container to go (Redis really down). */
  stop(): Promise<void>;
}

export function redisService(name: string, labels: Record<string, string> = {}): RedisService {
  return {
    name,
    url: `redis://${name}:6379`,
    async start() {
      await docker.createService({
        Name: name,
        Labels: { 'sa.test': '1', ...labels },
        TaskTemplate: {
          ContainerSpec: { Image: 'sa/redis:dev', StopGracePeriod: 1e9 },
          RestartPolicy: { Condition: 'none' },
          Networks: [{ Target: SA_NETWORK }],
        },
        Mode: { Replicated: { Replicas: 1 } },
        // The name resolves to the task's address: this machine has no IPVS for service VIPs.
        EndpointSpec: { Mode: 'dnsrr' },
      } as unknown as Docker.CreateServiceOptions);
      await waitFor('Redis task running', async () => (await runningTasks(name))[0]?.ip, 30_000, 100);
    },
    async stop() {
      await removeService(name);
      await waitFor('Redis container gone', async () => (await docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${name}`] } })).length === 0, 30_000, 100);
    },
  };
}
