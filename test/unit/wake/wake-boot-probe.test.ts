/**
 * A running task whose port still refuses connections (the app is booting) is probed again every
 * few ms between Docker checks, so held requests go through soon after the app listens, without
 * more Docker calls. The "task" is 127.0.0.1 on a port that starts listening later.
 */
import { createServer, type Server } from 'node:http';
import t from 'tap';
import { LABELS } from '../../../src/labels.js';
import type { ServiceInfo, SwarmClient, TaskInfo } from '../../../src/swarm/swarm.js';
import { discovered, wakeStack } from '../../helpers/wake-stack.js';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/** `listMs`: how long a task list takes once the service has replicas (a busy engine); `onList(n)` sees each call. */
function fakeSwarm(port: number, opts: { listMs?: number; onList?: (n: number) => void } = {}) {
  let replicas = 0;
  const calls: string[] = [];
  const service = (): ServiceInfo => ({ id: 'svc-web', name: 'web', version: 1, labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.test', [LABELS.port]: String(port) }, replicas, updatedAt: '', templateKey: 't1' });
  const task: TaskInfo = { id: 'task-1', serviceId: 'svc-web', nodeId: 'n', state: 'running', desiredState: 'running', error: undefined, message: '', exitCode: undefined, containerId: undefined, createdAt: '', addresses: [{ networkId: 'net', networkName: 'net', ip: '127.0.0.1' }] };
  const swarm: SwarmClient = {
    ping: async () => undefined,
    listServices: async () => [service()],
    inspectService: async () => service(),
    scaleService: async (_name, to) => {
      calls.push(`scale ${to}`);
      const previous = replicas;
      replicas = to;
      return { changed: previous !== to, version: 2, previousReplicas: previous };
    },
    updateServiceLabels: async () => service(),
    listTasks: async () => {
      calls.push('listTasks');
      opts.onList?.(calls.filter((c) => c === 'listTasks').length);
      if (replicas > 0 && opts.listMs) await new Promise((r) => setTimeout(r, opts.listMs));
      return replicas > 0 ? [task] : [];
    },
    watchServices: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    containerNetworkBytes: async () => null,
  };
  return { swarm, calls };
}

t.test('a booting task is ready within a few ms of listening, not at the next Docker check', async (t) => {
  const port = await freePort();
  const { swarm, calls } = fakeSwarm(port);
  // A long Docker poll interval makes the difference plain: without the boot probe, readiness
  // would wait for the next check, about a second after the app starts listening.
  const stack = await wakeStack(t, swarm, { wakeTimeoutMs: 10_000, probeIntervalMs: 1000 });
  const { coordinator } = stack;
  let server: Server | undefined;
  t.teardown(() => server?.close());
  const entry = discovered(stack, 'web');

  let listeningAt = 0;
  setTimeout(() => {
    server = createServer((_req, res) => res.end('ok'));
    server.listen(port, '127.0.0.1', () => (listeningAt = performance.now()));
  }, 150);
  const ep = await coordinator.ensureReady(entry, AbortSignal.timeout(10_000));
  const readyAt = performance.now();
  t.equal(ep.port, port);
  t.ok(listeningAt > 0, 'the app was listening');
  t.ok(readyAt - listeningAt < 500, `ready ${Math.round(readyAt - listeningAt)} ms after the app listened (a Docker check is due every 1000 ms)`);
  t.ok(calls.filter((c) => c === 'listTasks').length <= 3, `no extra Docker calls (${calls.filter((c) => c === 'listTasks').length} task lists)`);
});

t.test('a booting task is probed while a slow Docker check is in flight: the app answers before the list does', async (t) => {
  const port = await freePort();
  let server: Server | undefined;
  t.teardown(() => server?.close());
  let listeningAt = 0;
  // 1st list: before the scale-up (fast); 2nd: the task is running but refuses (booting); the app
  // starts listening 100 ms into the 3rd, which takes 400 ms like a list on an engine starting 50
  // containers. Waiting for that list would answer ~300 ms after the app listens.
  const { swarm, calls } = fakeSwarm(port, {
    listMs: 400,
    onList: (n) => {
      if (n !== 3) return;
      setTimeout(() => {
        server = createServer((_req, res) => res.end('ok'));
        server.listen(port, '127.0.0.1', () => (listeningAt = performance.now()));
      }, 100);
    },
  });
  const stack = await wakeStack(t, swarm, { wakeTimeoutMs: 10_000, probeIntervalMs: 20 });
  const ep = await stack.coordinator.ensureReady(discovered(stack, 'web'), AbortSignal.timeout(10_000));
  const readyAt = performance.now();
  t.equal(ep.port, port);
  t.ok(listeningAt > 0, 'the app was listening');
  t.ok(readyAt - listeningAt < 150, `ready ${Math.round(readyAt - listeningAt)} ms after the app listened (the task list in flight ends ~300 ms after)`);
  t.equal(calls.filter((c) => c === 'listTasks').length, 3, 'no task list after the one in flight');
});
