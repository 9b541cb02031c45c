/** Which Swarm tasks may take requests (pure logic; the real swarm is in test/e2e/ready.test.ts). */
import t from 'tap';
import { STARTING_SETTLE_MS, taskMayServe } from '../../../src/wake/readiness.js';
import { TaskStarts } from '../../../src/wake/task-starts.js';
import type { TaskInfo, TaskState } from '../../../src/swarm/swarm.js';

const now = Date.parse('2026-12-01T10:00:00Z');
const ago = (ms: number) => new Date(now - ms).toISOString();
const task = (state: TaskState, desiredState: TaskState, over: Partial<TaskInfo> = {}): TaskInfo => ({
  id: 'task1',
  serviceId: 'svc1',
  nodeId: 'node1',
  state,
  desiredState,
  error: undefined,
  message: '',
  exitCode: undefined,
  containerId: 'c1',
  stateSince: ago(5_000),
  createdAt: '',
  addresses: [],
  ...over,
});

t.test('probe rule: running, or starting long enough for its container to be up', async (t) => {
  t.equal(taskMayServe(task('running', 'running'), 'probe', now), true);
  t.equal(taskMayServe(task('starting', 'running'), 'probe', now), true, 'a pending HEALTHCHECK does not hold it');
  t.equal(taskMayServe(task('starting', 'running', { stateSince: ago(STARTING_SETTLE_MS) }), 'probe', now), true, 'from the settle time on');
  t.equal(taskMayServe(task('starting', 'running', { stateSince: ago(STARTING_SETTLE_MS - 1) }), 'probe', now), false, 'just started: its container may not be up, never probed');
  t.equal(taskMayServe(task('starting', 'running', { containerId: undefined }), 'probe', now), false, 'no container yet');
  t.equal(taskMayServe(task('starting', 'running', { stateSince: undefined }), 'probe', now), false, 'no timestamp');
  t.equal(taskMayServe(task('starting', 'running', { stateSince: 'garbage' }), 'probe', now), false, 'unreadable timestamp');
  t.equal(taskMayServe(task('preparing', 'running'), 'probe', now), false);
  t.equal(taskMayServe(task('running', 'shutdown'), 'probe', now), false, 'being shut down');
  t.equal(taskMayServe(task('failed', 'shutdown'), 'probe', now), false);
});

t.test('probe rule: a starting task whose container start was heard is probed at once', async (t) => {
  let clock = now;
  const starts = new TaskStarts(() => clock);
  const fresh = task('starting', 'running', { stateSince: ago(10) });
  t.equal(taskMayServe(fresh, 'probe', now, starts), false, 'not heard: the settle time holds');
  starts.add('task1');
  t.equal(taskMayServe(fresh, 'probe', now, starts), true, 'heard: its address is up');
  t.equal(taskMayServe(task('starting', 'running', { stateSince: undefined }), 'probe', now, starts), true, 'heard, no timestamp needed');
  t.equal(taskMayServe(task('starting', 'running', { containerId: undefined }), 'probe', now, starts), false, 'still needs a container');
  t.equal(taskMayServe(fresh, 'healthy', now, starts), false, 'ready=healthy still waits for running');
  t.equal(taskMayServe(task('starting', 'shutdown'), 'probe', now, starts), false, 'being shut down');
  t.equal(taskMayServe({ ...fresh, id: 'task2' }, 'probe', now, starts), false, 'only the task heard');
  clock += 61_000;
  t.equal(starts.has('task1'), false, 'forgotten after a minute');
});

t.test('TaskStarts drops what is older than a minute, and the oldest beyond 10,000', async (t) => {
  let clock = 0;
  const starts = new TaskStarts(() => clock);
  starts.add('old');
  clock = 30_000;
  starts.add('mid');
  clock = 61_000;
  starts.add('new');
  t.same([starts.has('old'), starts.has('mid'), starts.has('new')], [false, true, true]);
  for (let i = 0; i < 10_001; i++) starts.add(`t${i}`);
  t.equal(starts.has('mid'), false, 'the oldest went first');
  t.equal(starts.has('t0'), false);
  t.equal(starts.has('t10000'), true);
});

t.test('healthy rule: only what Swarm calls running', async (t) => {
  t.equal(taskMayServe(task('running', 'running'), 'healthy', now), true);
  t.equal(taskMayServe(task('starting', 'running'), 'healthy', now), false);
  t.equal(taskMayServe(task('running', 'shutdown'), 'healthy', now), false);
});
