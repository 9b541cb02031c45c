import t from 'tap';
import { NetworkBytesSource } from '../../../src/idle/sources/network-bytes.js';
import { FakeRegistry, FakeSwarm, entry, runningTask, silentLog } from '../../helpers/idle-fakes.js';

function setup(threshold = 1024) {
  const swarm = new FakeSwarm();
  const registry = new FakeRegistry([entry('web'), entry('sleepy', { replicas: 0 })]);
  swarm.tasks.set('id-web', [runningTask('t1', 'id-web', 'c1')]);
  swarm.tasks.set('id-sleepy', [runningTask('t9', 'id-sleepy', 'c9')]);
  const source = new NetworkBytesSource({ swarm, registry, intervalMs: 1000, thresholdBytes: threshold, log: silentLog });
  return { swarm, registry, source };
}

t.test('first sight is a baseline; growth beyond the threshold is activity; noise is not', async (t) => {
  const { swarm, source } = setup(1024);
  swarm.bytes.set('c1', { rx: 100_000, tx: 50_000 });
  t.same(await source.poll(), [], 'baseline');
  swarm.bytes.set('c1', { rx: 100_600, tx: 50_424 });
  t.same(await source.poll(), [], 'exactly 1024 bytes: noise');
  swarm.bytes.set('c1', { rx: 101_000, tx: 51_049 });
  t.same(await source.poll(), ['web'], '1025 bytes: activity (rx and tx summed)');
});

t.test('a task still starting (its HEALTHCHECK pending) counts: it may already serve', async (t) => {
  const { swarm, source } = setup();
  swarm.tasks.set('id-web', [{ ...runningTask('t1', 'id-web', 'c1'), state: 'starting' }, { ...runningTask('t0', 'id-web', 'c0'), state: 'starting', desiredState: 'shutdown' }]);
  swarm.bytes.set('c1', { rx: 0, tx: 0 });
  swarm.bytes.set('c0', { rx: 0, tx: 0 });
  await source.poll();
  swarm.bytes.set('c0', { rx: 9e6, tx: 0 });
  t.same(await source.poll(), [], 'not a starting task being shut down');
  swarm.bytes.set('c1', { rx: 5000, tx: 0 });
  t.same(await source.poll(), ['web'], 'the starting task\'s bytes are activity');
});

t.test('asleep apps are not polled', async (t) => {
  const { swarm, source } = setup();
  swarm.bytes.set('c9', { rx: 0, tx: 0 });
  await source.poll();
  swarm.bytes.set('c9', { rx: 1e9, tx: 0 });
  t.same(await source.poll(), []);
});

t.test('any one container of several is enough; a new container only takes a baseline', async (t) => {
  const { swarm, source } = setup();
  swarm.tasks.set('id-web', [runningTask('t1', 'id-web', 'c1'), runningTask('t2', 'id-web', 'c2')]);
  swarm.bytes.set('c1', { rx: 0, tx: 0 });
  swarm.bytes.set('c2', { rx: 0, tx: 0 });
  await source.poll();
  swarm.bytes.set('c2', { rx: 5000, tx: 0 });
  t.same(await source.poll(), ['web']);
  swarm.tasks.set('id-web', [runningTask('t3', 'id-web', 'c3')]);
  swarm.bytes.set('c3', { rx: 9e6, tx: 9e6 });
  t.same(await source.poll(), [], 'a replaced task starts with a baseline');
});

t.test('a lower counter is a reset; containers on other engines (null) are skipped', async (t) => {
  const { swarm, source } = setup();
  swarm.bytes.set('c1', { rx: 10_000, tx: 0 });
  await source.poll();
  swarm.bytes.set('c1', { rx: 10, tx: 0 });
  t.same(await source.poll(), []);
  swarm.bytes.set('c1', null);
  t.same(await source.poll(), []);
});

t.test('a failed poll keeps the baseline (not a reset, not activity)', async (t) => {
  const { swarm, source } = setup();
  swarm.bytes.set('c1', { rx: 10_000, tx: 0 });
  await source.poll();
  swarm.bytes.set('c1', new Error('docker said no'));
  t.same(await source.poll(), []);
  swarm.bytes.set('c1', { rx: 10_500, tx: 0 });
  t.same(await source.poll(), [], 'compared with the last good value: 500 bytes');
  swarm.bytes.set('c1', { rx: 20_000, tx: 0 });
  t.same(await source.poll(), ['web']);
});

t.test('only running (or starting) tasks with a container are counted', async (t) => {
  const { swarm, source } = setup();
  swarm.tasks.set('id-web', [{ ...runningTask('t1', 'id-web', 'c1'), state: 'preparing' }, { ...runningTask('t2', 'id-web', 'c2'), containerId: undefined }]);
  swarm.bytes.set('c1', { rx: 0, tx: 0 });
  await source.poll();
  swarm.bytes.set('c1', { rx: 1e6, tx: 0 });
  t.same(await source.poll(), []);
});
