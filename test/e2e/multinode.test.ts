/**
 * Three nodes (scripts/multinode-up.sh: a dockerd per network namespace, three managers), as the
 * agency's VPSs are: the activator on node 1, apps placed on the other nodes. It proxies to task
 * addresses on other nodes over the overlay network, and rides out the loss of an app's node.
 */
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { send } from '../helpers/http.js';
import { multinodeSwarm, type SwarmNode } from '../helpers/multinode.js';
import { createApp, runId, runningTasks, serviceState, waitFor, waitRunningTasks } from '../helpers/swarm.js';

const nodes = multinodeSwarm();
if (nodes instanceof Error) throw nodes;
const [n1] = nodes as [SwarmNode, SwarmNode, SwarmNode];
const run = runId('mn');
let activator: RunningActivator;

t.before(async () => {
  activator = await startActivator({
    name: `${run}-activator`,
    run,
    on: n1,
    constraints: ['node.labels.sa.node==n1'],
    env: { ACTIVATOR_WAKE_TIMEOUT: '90s', ACTIVATOR_IDLE_TIMEOUT: '10m' },
  });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

const nodeOf = (nodeId: string | undefined) => (nodes).find((n) => n.nodeId === nodeId);

t.test('the activator on node 1 wakes an app placed on another node and proxies to its task there', async (t) => {
  const app = await createApp({ name: `${run}-away`, run, on: n1, constraints: ['node.labels.sa.node!=n1'] });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const res = await send(`${activator.url}/hello?x=1`, { headers: { host: app.host } });
  t.equal(res.status, 200);
  t.equal(res.json<{ path: string }>().path, '/hello');
  const [task] = await waitRunningTasks(app.name, n1);
  const node = nodeOf(task?.nodeId);
  t.ok(node && node.index !== 1, `the task runs on node ${node?.index}, not the activator's`);
  t.equal((await serviceState(app.name, n1)).replicas, 1);
});

t.test("node loss: a request routed to a task on a lost node is held and served by the task Swarm starts elsewhere", async (t) => {
  const app = await createApp({ name: `${run}-loss`, run, on: n1, constraints: ['node.labels.sa.node!=n1'], env: { STARTUP_DELAY_MS: '0' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  t.equal((await send(`${activator.url}/before`, { headers: { host: app.host } })).status, 200, 'awake, and the activator knows its task');
  const [before] = await waitRunningTasks(app.name, n1);
  const lost = nodeOf(before?.nodeId);
  if (!lost || lost.index === 1) throw new Error(`app task on unexpected node ${before?.nodeId}`);

  lost.disconnect();
  t.teardown(() => lost.reconnect());
  const cutAt = Date.now();
  const res = await send(`${activator.url}/after`, { headers: { host: app.host }, timeoutMs: 120_000 });
  const servedMs = Date.now() - cutAt;
  t.equal(res.status, 200, `served ${servedMs} ms after node ${lost.index} was cut off`);
  t.equal(res.json<{ path: string }>().path, '/after');
  t.comment(`node ${lost.index} cut off; the held request was answered after ${servedMs} ms`);

  // The replacement may have answered while Swarm still says `starting`: wait for it to run.
  const serving = await waitFor('a task running on another node', async () => {
    const onOthers = (await runningTasks(app.name, n1)).map((x) => nodeOf(x.nodeId)?.index).filter((i) => i !== undefined && i !== lost.index);
    return onOthers.length > 0 ? onOthers : undefined;
  }, 30_000, 100).catch(() => []);
  t.ok(serving.length >= 1, `a task runs on node ${serving.join(', ')} now`);
  const next = await send(`${activator.url}/next`, { headers: { host: app.host } });
  t.equal(next.status, 200, 'and the next request is served');
  t.comment(`next request: ${Math.round(next.ms)} ms`);
});
