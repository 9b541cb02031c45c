/**
 * Task lists through the Docker queue are batched: while one list is queued or running, every
 * service asked for joins the next one, one Docker call with a `service` filter per service
 * (src/swarm/task-list-batch.ts). Fifty wakes polling at once make a few calls, not fifty each.
 */
import t from 'tap';
import { createQueuedSwarm, type ListsTasksOfMany } from '../../../src/swarm/queued-swarm.js';
import type { SwarmClient, TaskInfo } from '../../../src/swarm/swarm.js';

/** 25 base-36 characters, like a Swarm ID. */
const idOf = (n: number) => `svc${String(n).padStart(22, '0')}`;

function task(serviceId: string, n: number): TaskInfo {
  return { id: `task-${serviceId}-${n}`, serviceId, nodeId: 'n', state: 'running', desiredState: 'running', error: undefined, message: '', exitCode: undefined, containerId: undefined, createdAt: '', addresses: [] };
}

/** An engine whose task lists wait until the test releases them; records every call. */
function slowEngine(missing = new Set<string>()) {
  const calls: Array<{ op: 'one' | 'many'; ids: string[] }> = [];
  const gates: Array<() => void> = [];
  const wait = () => new Promise<void>((resolve) => gates.push(resolve));
  const listOne = async (id: string) => {
    calls.push({ op: 'one', ids: [id] });
    await wait();
    if (missing.has(id)) throw Object.assign(new Error(`service ${id} not found`), { statusCode: 404 });
    return [task(id, 1)];
  };
  const inner = {
    listTasks: listOne,
    async listTasksOf(ids: readonly string[]) {
      calls.push({ op: 'many', ids: [...ids] });
      await wait();
      const gone = ids.find((id) => missing.has(id));
      if (gone) throw Object.assign(new Error(`service ${gone} not found`), { statusCode: 404 });
      return ids.flatMap((id) => [task(id, 1), task(id, 2)]);
    },
  } as unknown as SwarmClient & ListsTasksOfMany;
  const release = async () => {
    while (gates.length > 0) gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { inner, calls, release };
}

t.test('services asked for while a list is in flight share the next one', async (t) => {
  const { inner, calls, release } = slowEngine();
  const swarm = createQueuedSwarm(inner, 8);
  const first = swarm.listTasks(idOf(0));
  await new Promise((r) => setImmediate(r));
  const rest = Array.from({ length: 10 }, (_, i) => swarm.listTasks(idOf(i + 1)));
  const again = swarm.listTasks(idOf(3)); // the same service twice: one filter value, two answers
  await release();
  t.same((await first).map((x) => x.id), [`task-${idOf(0)}-1`]);
  await release();
  const lists = await Promise.all(rest);
  t.equal(calls.length, 2, 'two Docker calls for 12 lists (without the batch: 12, 8 at a time)');
  t.same(calls[1], { op: 'many', ids: Array.from({ length: 10 }, (_, i) => idOf(i + 1)) });
  for (const [i, list] of lists.entries()) t.same(list.map((x) => x.serviceId), [idOf(i + 1), idOf(i + 1)], `service ${i + 1} gets its own tasks`);
  t.same((await again).map((x) => x.serviceId), [idOf(3), idOf(3)]);
  t.not(await again, lists[2], 'each caller gets its own array');
});

t.test('a service gone from the batch fails alone; the others still get their tasks', async (t) => {
  const gone = idOf(2);
  const { inner, calls, release } = slowEngine(new Set([gone]));
  const swarm = createQueuedSwarm(inner, 8);
  const blocker = swarm.listTasks(idOf(9));
  await new Promise((r) => setImmediate(r));
  const asked = [1, 2, 3].map((n) => swarm.listTasks(idOf(n)));
  const outcomes = Promise.allSettled(asked);
  for (let i = 0; i < 6; i++) await release();
  await blocker;
  const [a, b, c] = await outcomes;
  t.equal(a?.status, 'fulfilled');
  t.equal(b?.status, 'rejected');
  t.match((b as PromiseRejectedResult).reason, { statusCode: 404 });
  t.equal(c?.status, 'fulfilled');
  t.same(calls.map((x) => x.op), ['one', 'many', 'one', 'one', 'one'], 'the refused batch is listed again one by one');
});

t.test('a name, not an ID, is listed on its own (tasks carry the ID, not the name)', async (t) => {
  const { inner, calls, release } = slowEngine();
  const swarm = createQueuedSwarm(inner, 8);
  const byName = swarm.listTasks('web');
  const byId = swarm.listTasks(idOf(1));
  await release();
  await Promise.all([byName, byId]);
  t.same(calls.map((x) => x.op).sort(), ['one', 'one']);
});

t.test('an engine client without listTasksOf: one call per list, as before', async (t) => {
  let n = 0;
  const inner = { listTasks: async (id: string) => (n++, [task(id, 1)]) } as unknown as SwarmClient;
  const swarm = createQueuedSwarm(inner, 8);
  await Promise.all([1, 2, 3].map((i) => swarm.listTasks(idOf(i))));
  t.equal(n, 3);
});
