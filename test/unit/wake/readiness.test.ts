/** Which Swarm tasks may take requests (pure logic; the real swarm is in test/e2e/ready.test.ts). */
import t from 'tap';
import { STARTING_SETTLE_MS, taskMayServe } from '../../../src/wake/readiness.js';
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

t.test('healthy rule: only what Swarm calls running', async (t) => {
  t.equal(taskMayServe(task('running', 'running'), 'healthy', now), true);
  t.equal(taskMayServe(task('starting', 'running'), 'healthy', now), false);
  t.equal(taskMayServe(task('running', 'shutdown'), 'healthy', now), false);
});
