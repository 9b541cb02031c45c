/**
 * The lost-task pieces on their own (src/wake/lost-tasks.ts): SlowRequests' one timer (mocked
 * here, so periods are exact; Node 20's mock keeps firing an interval cleared in its own callback,
 * so the timer's self-stop is not asserted here) and LostTaskCheck's shared task list over a counting fake of
 * listTasks. The real thing, a node cut off under a request: test/e2e/multinode.test.ts.
 */
import { mock } from 'node:test';
import t from 'tap';
import type { TaskInfo } from '../../../src/swarm/swarm.js';
import { LostTaskCheck, SlowRequests, type SlowRequest } from '../../../src/wake/lost-tasks.js';
import { ReadyEndpoints } from '../../../src/wake/ready-endpoints.js';
import { entry, runningTask } from '../../helpers/idle-fakes.js';

class Waiting implements SlowRequest {
  waitingSince = 0;
  checks = 0;
  checkSlow(): void {
    this.checks++;
  }
}

t.test('SlowRequests: a request is asked about once it waited a whole period, then every period, until it is answered', async (t) => {
  mock.timers.enable({ apis: ['setInterval'] });
  t.teardown(() => mock.timers.reset());
  const slow = new SlowRequests<Waiting>(100);
  const early = new Waiting();
  slow.add(early);
  mock.timers.tick(100);
  t.equal(early.checks, 0, 'not at the first sweep: it may have waited only a moment');
  const late = new Waiting();
  slow.add(late);
  mock.timers.tick(100);
  t.equal(early.checks, 1, 'asked at the second sweep');
  t.equal(late.checks, 0, 'a request added after the first sweep waits a period of its own');
  mock.timers.tick(100);
  t.same([early.checks, late.checks], [2, 1], 'then every period');
  slow.delete(early);
  mock.timers.tick(100);
  t.same([early.checks, late.checks], [2, 2], 'an answered request is not asked again');
  slow.delete(late);
  slow.stop();
});

t.test('LostTaskCheck: one task list per app per second; a task gone or no longer serving is lost and its endpoint forgotten', async (t) => {
  let lists = 0;
  let tasks: TaskInfo[] = [runningTask('task-a', 'id-web', 'c1'), runningTask('task-b', 'id-web', 'c2')];
  let fail = false;
  const swarm = {
    listTasks: async (serviceId: string) => {
      lists++;
      t.equal(serviceId, 'id-web');
      if (fail) throw new Error('Docker API unreachable');
      return tasks;
    },
  };
  const endpoints = new ReadyEndpoints();
  const a = { ip: '10.0.0.1', port: 80, taskId: 'task-a' };
  const b = { ip: '10.0.0.2', port: 80, taskId: 'task-b' };
  endpoints.set('web', [a, b]);
  const check = new LostTaskCheck(swarm, endpoints);
  const web = entry('web');

  t.same(await Promise.all([check.isLost(web, a), check.isLost(web, b), check.isLost(web, a)]), [false, false, false], 'both tasks serve');
  t.equal(lists, 1, 'one task list for all the questions about the app');

  tasks = [{ ...runningTask('task-a', 'id-web', 'c1'), desiredState: 'shutdown' }];
  t.equal(await check.isLost(web, a), false, 'within the second, the same list answers');
  t.equal(lists, 1);
  check.forget('web');
  t.equal(await check.isLost(web, a), true, 'desired state shutdown: lost');
  t.equal(await check.isLost(web, b), true, 'no longer listed: lost');
  t.equal(lists, 2);
  t.equal(endpoints.next('web'), undefined, 'both endpoints forgotten');

  check.forget('web');
  fail = true;
  await t.rejects(check.isLost(web, a), /unreachable/, "Docker's error reaches the caller (it asks again next period)");
  fail = false;
  tasks = [runningTask('task-a', 'id-web', 'c1')];
  t.equal(await check.isLost(web, a), false, 'a failed list is not kept: the next question lists again');
  t.equal(lists, 4);
});
