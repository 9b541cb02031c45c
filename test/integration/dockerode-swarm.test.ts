/** DockerodeSwarm against the real engine: exact lookups, version-checked scaling, events. */
import t from 'tap';
import pino from 'pino';
import { DockerodeSwarm } from '../../src/swarm/dockerode-swarm.js';
import type { ServiceEvent } from '../../src/swarm/swarm.js';
import { DOCKER_HOST, SA_NETWORK, createApp, recordServiceEvents, runId, serviceState, waitFor } from '../helpers/swarm.js';

const log = pino({ level: 'silent' });
const run = runId('dsw');

t.test('inspect is exact: a name that is a prefix of another service is not that service', async (t) => {
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const long = await createApp({ name: `${run}-shop-web`, run });
  t.teardown(long.remove);
  t.equal(await swarm.inspectService(`${run}-shop`), null, 'no service named exactly that');
  const found = await swarm.inspectService(`${run}-shop-web`);
  t.equal(found?.name, `${run}-shop-web`);
  t.equal(found?.replicas, 0);
  t.equal((await swarm.inspectService(found?.id ?? ''))?.name, `${run}-shop-web`, 'by ID too');
});

t.test('ten concurrent scale-ups of one service write once', async (t) => {
  const a = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const b = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const app = await createApp({ name: `${run}-scale`, run, image: 'sa/never-healthy:dev' });
  t.teardown(app.remove);
  const events = await recordServiceEvents(app.name);
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).scaleService(app.name, 1, { onlyIf: (s) => (s.replicas ?? 0) < 1 })));
  t.equal(results.filter((r) => r.changed).length, 1, 'one call changed the service, the others saw it done');
  await waitFor('event', async () => events.scaleUps() >= 1, 5000, 20);
  await new Promise((r) => setTimeout(r, 300));
  events.stop();
  t.equal(events.scaleUps(), 1, 'Docker saw one scale-up');
  t.equal((await serviceState(app.name)).replicas, 1);
});

t.test('label updates racing a scale: "update out of sequence" is retried, nothing is lost', async (t) => {
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const app = await createApp({ name: `${run}-race`, run, image: 'sa/never-healthy:dev' });
  t.teardown(app.remove);
  await Promise.all([
    swarm.scaleService(app.name, 1, { labels: { 'sa.scaled': 'yes' } }),
    ...Array.from({ length: 6 }, (_, i) => swarm.updateServiceLabels(app.name, { [`sa.label-${i}`]: String(i) })),
  ]);
  const state = await serviceState(app.name);
  t.equal(state.replicas, 1, 'the scale landed');
  t.equal(state.labels['sa.scaled'], 'yes', 'with its labels, in the same update');
  for (let i = 0; i < 6; i++) t.equal(state.labels[`sa.label-${i}`], String(i), `label ${i} landed`);
});

t.test('expectedVersion: a stale version is refused, not written', async (t) => {
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const app = await createApp({ name: `${run}-stale`, run, image: 'sa/never-healthy:dev', replicas: 1 });
  t.teardown(app.remove);
  const seen = await swarm.inspectService(app.name);
  await swarm.updateServiceLabels(app.name, { 'sa.touched': '1' });
  const res = await swarm.scaleService(app.name, 0, { expectedVersion: seen?.version ?? 0 });
  t.equal(res.changed, false);
  t.equal(res.conflict, true);
  t.equal((await serviceState(app.name)).replicas, 1, 'still up');
});

t.test('tasks carry their address on the shared network; events carry replicas', async (t) => {
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const app = await createApp({ name: `${run}-tasks`, run });
  t.teardown(app.remove);
  const events: ServiceEvent[] = [];
  const started: string[] = [];
  const abort = new AbortController();
  const watching = swarm.watchServices(abort.signal, (e) => events.push(e), (taskId) => started.push(taskId));
  await new Promise((r) => setTimeout(r, 200));
  await swarm.scaleService(app.name, 1);
  const svc = await swarm.inspectService(app.name);
  const task = await waitFor('a running task', async () => (await swarm.listTasks(svc?.id ?? '')).find((x) => x.state === 'running'), 30_000, 100);
  t.match(task.addresses.find((a) => a.networkName === SA_NETWORK)?.ip, /^\d+\.\d+\.\d+\.\d+$/, 'an IPv4 on the shared network');
  t.ok(task.containerId, 'the container is known');
  const bytes = await swarm.containerNetworkBytes(task.containerId ?? '');
  t.ok(bytes && bytes.rx >= 0 && bytes.tx >= 0, 'network byte counters readable');
  await waitFor('the update event', async () => events.some((e) => e.serviceName === app.name && e.replicasNew === 1), 5000, 20);
  const ev = events.find((e) => e.serviceName === app.name && e.replicasNew === 1);
  t.equal(ev?.action, 'update');
  t.equal(ev?.replicasOld, 0);
  await waitFor('the task container start', async () => started.includes(task.id), 5000, 20);
  t.notOk(events.some((e) => e.serviceId === task.containerId), 'container events are not reported as service events');
  abort.abort();
  await watching;
});

t.test('an unreachable engine is a SwarmUnavailableError', async (t) => {
  const swarm = new DockerodeSwarm({ dockerHost: 'unix:///nonexistent/docker.sock', log });
  await t.rejects(swarm.listServices([]), { name: 'SwarmUnavailableError', message: /Docker API unreachable/ });
});
