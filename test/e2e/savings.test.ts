/**
 * What sleeping saved, on the real swarm: an app with a 64 MiB reservation asleep for N seconds
 * reports N × 64 MiB, through /api/report, /metrics and the CLI; the figure survives a new
 * activator (it lives in the service's labels); an app without reservation or limit is counted
 * with the RSS measured while it was awake.
 */
import t from 'tap';
import { runCli } from '../../src/cli/main.js';
import { LABELS } from '../../src/labels.js';
import type { SavingsReport } from '../../src/savings/savings.js';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { DOCKER_HOST, createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';

const run = runId('save');
const MIB = 1024 ** 2;
const env = { ACTIVATOR_IDLE_CHECK_INTERVAL: '1h', ACTIVATOR_MIN_AWAKE: '0s', ACTIVATOR_NETWORK_STATS_INTERVAL: '500ms' };
let activator: RunningActivator;

t.before(async () => {
  activator = await startActivator({ name: `${run}-activator`, run, env });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

async function report(a: RunningActivator): Promise<SavingsReport> {
  return (await (await a.adminFetch('/api/report')).json()) as SavingsReport;
}

t.test('asleep N seconds with a 64 MiB reservation: N × 64 MiB, and it survives a new activator', async (t) => {
  const app = await createApp({ name: `${run}-reserved`, run, replicas: 1, memoryReservation: 64 * MIB, labels: { [LABELS.deployEnv]: 'mr-1' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  await waitFor('task running', async () => (await activator.adminFetch('/api/apps').then((r) => r.json()) as Array<{ service: string; replicas: number }>).find((a) => a.service === app.name)?.replicas === 1, 10_000, 100);

  const slept = await activator.adminFetch(`/api/apps/${app.name}/sleep`, { method: 'POST' });
  t.equal(slept.status, 200);
  const since = Date.parse((await serviceState(app.name)).labels[LABELS.stateSince] ?? '');
  t.ok(Number.isFinite(since), 'asleep since, in the label');
  await new Promise((r) => setTimeout(r, 4000));

  const r = await report(activator);
  const mine = r.apps.find((a) => a.service === app.name)!;
  const n = (Date.parse(r.to) - since) / 1000;
  t.ok(n >= 4, `asleep ${n.toFixed(1)} s by the report's clock`);
  t.ok(Math.abs(mine.asleepSeconds - n) <= 0.2, `reports ${mine.asleepSeconds} s asleep (expected ${n.toFixed(1)})`);
  t.equal(mine.memorySource, 'reservation');
  t.equal(mine.memoryPerTaskBytes, 64 * MIB);
  t.ok(Math.abs((mine.savedByteSeconds ?? 0) - n * 64 * MIB) <= 0.2 * 64 * MIB, `saved ${mine.savedByteSeconds} byte·s = N × 64 MiB`);
  t.match(r.environments.find((e) => e.env === 'mr-1'), { apps: 1 });
  t.ok(((await activator.metric('activator_asleep_seconds', { app: app.name })) ?? 0) >= 4, 'the asleep-seconds gauge');
  t.equal(await activator.metric('activator_app_memory_bytes', { app: app.name, source: 'reservation' }), 64 * MIB);

  // A wake folds the sleep into the service's labels, in the scale-up's update.
  const woke = await activator.adminFetch(`/api/apps/${app.name}/wake`, { method: 'POST' });
  t.equal(woke.status, 200);
  const labels = (await serviceState(app.name)).labels;
  const folded = Number(labels[LABELS.savingsAsleepSeconds]);
  t.ok(folded >= 4 && folded <= n + 3, `savings.asleep-seconds = ${folded}`);
  t.match(labels[LABELS.savingsAsleepDays], new RegExp(`^${new Date().toISOString().slice(0, 10)}:\\d+$`));

  // A new activator (another replica, or after a restart) reads the same figure from the labels.
  await activator.stop();
  activator = await startActivator({ name: `${run}-activator`, run, env });
  await activator.waitForApp(app.name);
  const after = (await report(activator)).apps.find((a) => a.service === app.name)!;
  t.equal(after.asleepSeconds, folded, 'nothing lost');
  t.equal(after.asleepNow, false);

  // The CLI computes the same from Docker alone.
  let out = '';
  const code = await runCli(['report', '--json', '--since', '1d'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true } }, { ...process.env, DOCKER_HOST });
  t.equal(code, 0);
  const cli = (JSON.parse(out) as SavingsReport).apps.find((a) => a.service === app.name);
  t.match(cli, { asleepSeconds: folded, memorySource: 'reservation', memoryPerTaskBytes: 64 * MIB });
});

t.test('without reservation or limit: the RSS measured while awake, written with the sleep', async (t) => {
  const app = await createApp({ name: `${run}-rss`, run, replicas: 1 });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  // The network-bytes poll (every 500 ms here) reads the container's memory too.
  await waitFor('RSS measured', async () => {
    const apps = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; savings: { memorySource: string } | null }>;
    return apps.find((a) => a.service === app.name)?.savings?.memorySource === 'rss';
  }, 20_000, 200);
  const slept = await activator.adminFetch(`/api/apps/${app.name}/sleep`, { method: 'POST' });
  t.equal(slept.status, 200);
  const rss = Number((await serviceState(app.name)).labels[LABELS.savingsRss]);
  t.ok(rss > 1 * MIB && rss < 512 * MIB, `savings.rss = ${(rss / MIB).toFixed(1)} MiB, in the scale-down's update`);
  await new Promise((r) => setTimeout(r, 2000));
  const mine = (await report(activator)).apps.find((a) => a.service === app.name)!;
  t.equal(mine.memorySource, 'rss');
  t.equal(mine.memoryPerTaskBytes, rss);
  t.ok(mine.asleepSeconds >= 2, `${mine.asleepSeconds} s asleep`);
  t.ok(Math.abs((mine.savedByteSeconds ?? 0) - mine.asleepSeconds * rss) <= rss, 'asleep × RSS');
});
