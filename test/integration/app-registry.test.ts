/** Discovery against the real engine: events keep the Host map current; broken labels are skipped and named. */
import t from 'tap';
import pino from 'pino';
import { AppRegistry } from '../../src/discovery/app-registry.js';
import { LABELS } from '../../src/labels.js';
import { DockerodeSwarm } from '../../src/swarm/dockerode-swarm.js';
import { DOCKER_HOST, createApp, docker, runId, waitFor } from '../helpers/swarm.js';

t.test('create, update and remove events keep the map current; broken labels are logged, not fatal', async (t) => {
  const run = runId('reg');
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const swarm = new DockerodeSwarm({ dockerHost: DOCKER_HOST, log });
  const registry = new AppRegistry({
    swarm,
    defaults: { strategy: 'blocking', wakeTimeoutMs: 60_000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: undefined },
    selector: { key: 'sa.run', value: run },
    resyncIntervalMs: 60_000, // long: this test must pass on events alone
    log,
  });
  const before = await createApp({ name: `${run}-before`, run, host: `before.${run}.test` });
  t.teardown(before.remove);
  await registry.start();
  t.teardown(() => registry.stop());
  t.equal(registry.byHost(`before.${run}.test`)?.policy.service, `${run}-before`, 'found by the initial list');
  t.equal(registry.byHost(`BEFORE.${run}.test:443`)?.policy.service, `${run}-before`, 'Host header case and port ignored');

  const started = Date.now();
  const created = await createApp({ name: `${run}-new`, run, host: `new.${run}.test` });
  t.teardown(created.remove);
  await waitFor('create event', async () => registry.byHost(`new.${run}.test`) !== undefined, 5000, 5);
  t.comment(`create → in the map in ${Date.now() - started} ms`);

  // Host from a Traefik router rule once our own hosts label is gone.
  const svc = docker.getService(created.name);
  const spec = (await svc.inspect()) as { Version: { Index: number }; Spec: { Labels: Record<string, string> } };
  const labels: Record<string, string> = { ...spec.Spec.Labels, 'traefik.http.routers.x.rule': `Host(\`rule.${run}.test\`) || Host(\`www.rule.${run}.test\`)` };
  delete labels[LABELS.hosts];
  await svc.update({ _query: { version: spec.Version.Index }, _body: { ...spec.Spec, Labels: labels } });
  await waitFor('update event', async () => registry.byHost(`www.rule.${run}.test`) !== undefined, 5000, 5);
  t.equal(registry.byHost(`new.${run}.test`), undefined, 'the old host is gone');

  const broken = await createApp({ name: `${run}-broken`, run, labels: { [LABELS.idleTimeout]: 'ten minutes', [LABELS.port]: 'http' } });
  t.teardown(broken.remove);
  await waitFor('broken labels logged', async () => lines.filter((l) => l.service === `${run}-broken`).length >= 2, 5000, 10);
  const problems = lines.filter((l) => l.service === `${run}-broken`);
  t.same(problems.map((l) => l.label).sort(), [LABELS.idleTimeout, LABELS.port].sort(), 'each bad label named');
  t.ok(problems.every((l) => l.level === 50 && l.msg === 'skipping service with invalid labels'));
  t.equal(registry.byService(`${run}-broken`), undefined, 'skipped');

  await created.remove();
  await waitFor('remove event', async () => registry.byHost(`rule.${run}.test`) === undefined, 5000, 5);
  t.equal(registry.byService(`${run}-before`)?.policy.service, `${run}-before`, 'others untouched');
});
