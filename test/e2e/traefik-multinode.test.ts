/**
 * The real Traefik on the three-node swarm (scripts/multinode-up.sh), as on the agency's VPSs:
 * Traefik, Pebble and the activator on node 1, the app on another node. A request to Traefik's
 * published port on node 1 wakes the app through the catch-all; then Traefik's own router takes
 * over and reaches the task on the other node over the overlay network.
 * Run with `/work/bin/sa-e2e --multinode` (npm test brings the three nodes up).
 */
import t from 'tap';
import { multinodeSwarm, type SwarmNode } from '../helpers/multinode.js';
import { seedLabels, startRig, type EdgeRig } from '../helpers/traefik.js';
import { createApp, runId, runningTasks, waitFor, waitRunningTasks } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const nodes = multinodeSwarm();
if (nodes instanceof Error) throw nodes;
const [n1] = nodes as [SwarmNode, SwarmNode, SwarmNode];
const run = runId('tfm');
// startRig may first wait for another file's Traefik rig on this swarm (one at a time).
t.setTimeout(15 * 60_000);
const onN1 = ['node.labels.sa.node==n1'];
let rig: EdgeRig;

t.before(async () => {
  rig = await startRig({ run, on: n1, traefikNodeId: n1.nodeId, edgeConstraints: onN1, activatorConstraints: onN1, env: { ACTIVATOR_WAKE_TIMEOUT: '90s', ACTIVATOR_IDLE_TIMEOUT: '10m' } });
});
t.teardown(async () => {
  if (!t.passing()) {
    t.comment(await rig?.activator.logs());
    t.comment(await rig?.edge.logs());
  }
  await rig?.stop();
});

t.test('Traefik on node 1 wakes an app on another node through the catch-all, then routes to it there', async (t) => {
  const traefikTask = (await runningTasks(rig.edge.service, rig.on))[0];
  t.equal(traefikTask?.nodeId, n1.nodeId, "Traefik runs on node 1 (the stack file's placement label)");
  const name = `${run}-away`;
  const host = `away.${run}.sa-test.example.com`;
  const app = await createApp({ name, run, on: rig.on, host, constraints: ['node.labels.sa.node!=n1'], labels: { ...seedLabels(name, host), [LABELS.idleTimeout]: '10m' } });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);

  const cold = await rig.edge.request(host, '/hello?x=1', { insecure: true });
  t.equal(cold.status, 200, cold.text());
  t.equal(cold.header('x-activator-cold-start'), 'true', 'woken through the catch-all');
  t.equal(rig.servedBy(cold), 'activator');
  t.comment(`cold start through Traefik, app on another node: ${Math.round(cold.ms)} ms`);
  const [task] = await waitRunningTasks(name, rig.on);
  const node = nodes.find((n) => n.nodeId === task?.nodeId);
  t.ok(node && node.index !== 1, `the app runs on node ${node?.index}, Traefik on node 1`);

  const started = Date.now();
  const direct = await waitFor("Traefik's own router, across nodes", async () => {
    const r = await rig.edge.request(host, '/direct', { insecure: true });
    return rig.servedBy(r) === 'traefik' ? r : undefined;
  }, 40_000, 200);
  t.equal(direct.json<{ path: string }>().path, '/direct');
  t.comment(`Traefik's router took over ${((Date.now() - started) / 1000).toFixed(1)} s after the wake`);
  const cert = await rig.edge.waitForCertificate(host, 60_000);
  t.match(cert.issuer, /Pebble/, 'and the le resolver got a certificate from Pebble');
  t.equal((await rig.edge.request(host, '/strict')).status, 200, 'a client that trusts only Pebble gets through');
});
