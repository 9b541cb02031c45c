/**
 * Boundary soak on the real swarm: requests timed at the moment the reaper may be scaling the app
 * down. Each cycle waits the idle timeout plus an offset that sweeps the window after the boundary
 * (-30 … +215 ms: just before, the idle check, the update, the old task stopping), then sends a burst of concurrent
 * requests through the activator. Every request must be answered by the app with 200, whether it
 * lands before, during or after the scale-down. Bounded: 50 cycles, 240 s.
 *
 * The idle check runs every 100 ms here (not 500 ms as in idle.test.ts) so that the scale-down
 * happens within 100 ms of the boundary, and the offsets sweep it in 5 ms steps: more cycles land
 * while the reaper is deciding or writing its update, or while the old task is still stopping.
 */
import t from 'tap';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { send } from '../helpers/http.js';
import { createApp, docker, runId, serviceState, type SampleAppEcho } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('soak');
const CYCLES = 50;
const BURST = 3;
const IDLE_MS = 2000;
const CHECK_MS = 100;
const BUDGET_MS = 240_000;
let activator: RunningActivator;

t.before(async () => {
  activator = await startActivator({
    name: `${run}-activator`,
    run,
    env: {
      ACTIVATOR_IDLE_CHECK_INTERVAL: `${CHECK_MS}ms`,
      ACTIVATOR_MIN_AWAKE: '0',
      // The proxied requests' bytes would count as activity at the next stats poll and blur the
      // boundary; this soak is about the activator's own traffic racing its own scale-down.
      ACTIVATOR_NETWORK_STATS_INTERVAL: '1h',
      ACTIVATOR_WAKE_TIMEOUT: '30s',
    },
  });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

async function oldTaskStillRunning(service: string): Promise<boolean> {
  const tasks = (await docker.listTasks({ filters: { service: [service] } })) as Array<{ DesiredState: string; Status: { State: string } }>;
  return tasks.some((task) => task.DesiredState !== 'running' && task.Status.State === 'running');
}

t.test(`${CYCLES} cycles of requests at the idle boundary: 0 failed requests`, async (t) => {
  const app = await createApp({ name: `${run}-app`, run, labels: { [LABELS.idleTimeout]: `${IDLE_MS}ms` } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);

  const first = await send(`${activator.url}/warm`, { headers: { host: app.host } });
  t.equal(first.status, 200, 'woken');
  const started = Date.now();
  const failures: string[] = [];
  let requests = 0;
  let coldBursts = 0;
  let hotBursts = 0;
  let racedBursts = 0; // a scale-down was counted while the burst was in flight
  let downBefore = 0; // the app was at 0 replicas with no task left when the burst started
  let underWay = 0; // scaled to 0 but the old task still running (stopping) when the burst started
  let cycles = 0;

  for (let i = 0; i < CYCLES && Date.now() - started < BUDGET_MS; i++) {
    const offset = -30 + i * 5;
    await new Promise((r) => setTimeout(r, IDLE_MS + offset));
    const downsBefore = (await activator.metric('activator_idle_scale_downs_total', { app: app.name })) ?? 0;
    const replicasBefore = (await serviceState(app.name)).replicas;
    const stopping = replicasBefore === 0 && (await oldTaskStillRunning(app.name));
    const burst = await Promise.all(
      Array.from({ length: BURST }, async (_, j) => {
        const path = `/cycle/${i}/${j}`;
        try {
          const res = await send(`${activator.url}${path}`, { headers: { host: app.host }, timeoutMs: 30_000 });
          if (res.status !== 200) return { ok: false, cold: false, why: `${path}: HTTP ${res.status} ${res.header('x-activator-error') ?? ''} ${res.text().slice(0, 200)}` };
          if (res.json<SampleAppEcho>().path !== path) return { ok: false, cold: false, why: `${path}: answered for another path` };
          return { ok: true, cold: res.header('x-activator-cold-start') === 'true', why: '' };
        } catch (err) {
          return { ok: false, cold: false, why: `${path}: ${(err as Error).message}` };
        }
      }),
    );
    const downsAfter = (await activator.metric('activator_idle_scale_downs_total', { app: app.name })) ?? 0;
    cycles++;
    requests += burst.length;
    for (const r of burst) if (!r.ok) failures.push(`cycle ${i} (offset ${offset} ms): ${r.why}`);
    if (burst.some((r) => r.cold)) coldBursts++;
    else hotBursts++;
    if (replicasBefore === 0 && stopping) underWay++;
    else if (replicasBefore === 0) downBefore++;
    if (downsAfter > downsBefore) racedBursts++;
  }

  const elapsed = Date.now() - started;
  const scaleDowns = (await activator.metric('activator_idle_scale_downs_total', { app: app.name })) ?? 0;
  const wakes = (await activator.metric('activator_wakes_total', { app: app.name })) ?? 0;
  t.comment(`${cycles} cycles, ${requests} requests in ${(elapsed / 1000).toFixed(1)} s: ${failures.length} failed`);
  t.comment(`bursts: ${hotBursts} hot (app still up), ${coldBursts} cold (went through the wake path); ${underWay} started while the scale-down was under way (replicas 0, old task still running), ${downBefore} with the app already gone; ${racedBursts} saw the scale-down counted while in flight`);
  t.comment(`idle scale-downs: ${scaleDowns}, wakes: ${wakes}`);
  const logs = await activator.logLines();
  const count = (msg: string) => logs.filter((l) => l.app === app.name && String(l.msg).startsWith(msg)).length;
  t.comment(
    `reaper races: ${count('scale-down called off')} called off at the last moment, ` +
      `${count('scale-down skipped')} stopped at write time (version/onlyIf), ` +
      `${count('a request arrived while the scale-down was being written')} requests arrived while the update was being written`,
  );
  t.equal(cycles, CYCLES, `all ${CYCLES} cycles ran within the ${BUDGET_MS / 1000} s budget`);
  t.same(failures, [], '0 failed requests');
  t.ok(scaleDowns >= 5, 'the boundary was really crossed (scale-downs happened during the soak)');
  t.ok(hotBursts >= 3, `and some bursts arrived just before it (${hotBursts})`);
  const final = await serviceState(app.name);
  t.ok(final.replicas === 0 || final.replicas === 1, 'the service is in a consistent state');
});
