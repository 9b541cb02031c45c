/**
 * Cold start through the real Traefik against the direct floor of the same run, in alternating
 * cycles (SA_TRAEFIK_COLD_CYCLES, default 10 each). A measurement, printed; nothing is asserted on
 * the times (performance belongs to benchmarks, and this machine is shared).
 *   floor:   `npm run bench`'s floor (bench/cold-start/prober.mjs, a service on Traefik's network):
 *            scale call → first 2xx from the task's address, polled every 5 ms; no activator, no Traefik.
 *   Traefik: a browser's HTTPS GET with the app's Host and SNI to Traefik's published port, while
 *            the app sleeps → catch-all → activator → wake → first byte of the answer.
 * One app for both (sa/sample-app, STARTUP_DELAY_MS=0, no HEALTHCHECK, like `npm run bench`).
 * After each Traefik cycle, the take-over is timed too: from the answer to the first request that
 * Traefik's own router serves (the app's echo says who connected to it).
 * Before each cycle it is asleep with no task left, and Traefik has dropped its router again (a
 * monitor request answered by the activator says so, without waking it).
 */
import t from 'tap';
import { startProber } from '../../bench/cold-start.js';
import { stopFully } from '../../bench/lib/swarm.js';
import { EDGE_NETWORK, seedLabels, startRig, type EdgeRig } from '../helpers/traefik.js';
import { createApp, runId, waitFor } from '../helpers/swarm.js';

const run = runId('tfc');
// startRig may first wait for another file's Traefik rig on this swarm (one at a time).
t.setTimeout(15 * 60_000);
const CYCLES = Math.max(1, Number(process.env.SA_TRAEFIK_COLD_CYCLES ?? 10));
const MONITOR_UA = 'sa-cold-monitor';
let rig: EdgeRig;

t.before(async () => {
  rig = await startRig({ run, env: { ACTIVATOR_WAKE_TIMEOUT: '60s', ACTIVATOR_MONITOR_USER_AGENTS: MONITOR_UA, ACTIVATOR_IDLE_TIMEOUT: '30m' } });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await rig?.activator.logs());
  await rig?.stop();
});

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
};

t.test(`cold start through Traefik vs the direct floor, ${CYCLES} cycles each`, async (t) => {
  const prober = await startProber(run, EDGE_NETWORK);
  t.teardown(prober.stop);
  const name = `${run}-cold`;
  const host = `cold.${run}.sa-test.example.com`;
  const app = await createApp({ name, run, on: rig.on, host, healthIntervalMs: 0, env: { STARTUP_DELAY_MS: '0' }, labels: seedLabels(name, host) });
  // (the activator sees every stop: stopFully scales to 0 and waits until no container is left)
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);
  // Asleep, no task left, and Traefik has dropped the app's router (its requests reach the activator).
  // A probe that meets the old router dials the gone task (Traefik waits 30 s for that): give up on
  // it after 2 s and probe again.
  const asleepBehindTraefik = () =>
    waitFor('Traefik routes the sleeping app to the activator', async () => {
      const r = await rig.edge.request(host, '/', { insecure: true, headers: { 'user-agent': MONITOR_UA }, timeoutMs: 2000 });
      return r.header('x-activator-state') === 'asleep';
    }, 60_000, 200);

  const floor: number[] = [];
  const viaTraefik: number[] = [];
  const takeOver: number[] = [];
  for (let i = 0; i < CYCLES; i++) {
    // Floor: the same app, scaled by the prober.
    await stopFully(name);
    await asleepBehindTraefik();
    const m = await fetch(`${prober.url}/measure?service=${encodeURIComponent(name)}&timeoutMs=60000&intervalMs=5`, { signal: AbortSignal.timeout(90_000) });
    const sample = (await m.json()) as { floorMs: number; error?: string };
    if (!m.ok) throw new Error(`prober: ${sample.error ?? m.status}`);
    floor.push(sample.floorMs);
    await stopFully(name);

    // Through Traefik, from a sleeping app that Traefik has no router for.
    await asleepBehindTraefik();
    const res = await rig.edge.request(host, `/cold?i=${i}`, { insecure: true });
    t.equal(res.status, 200, `cycle ${i + 1}: woken through Traefik`);
    t.equal(res.header('x-activator-cold-start'), 'true', `cycle ${i + 1}: a cold start`);
    viaTraefik.push(res.ms);
    // Take-over: how long the woken app's requests still go through the activator.
    const answeredAt = performance.now();
    for (;;) {
      const r = await rig.edge.request(host, `/after?i=${i}`, { insecure: true });
      if (rig.servedBy(r) === 'traefik') break;
      if (performance.now() - answeredAt > 30_000) throw new Error("Traefik's router did not take over within 30 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    takeOver.push(performance.now() - answeredAt);
  }
  const f50 = percentile(floor, 50);
  const a50 = percentile(viaTraefik, 50);
  t.comment(`cold start p50 over ${CYCLES} cycles: through Traefik ${a50.toFixed(0)} ms, direct floor ${f50.toFixed(0)} ms, difference ${(a50 - f50).toFixed(0)} ms (p95 ${percentile(viaTraefik, 95).toFixed(0)} / ${percentile(floor, 95).toFixed(0)} ms)`);
  t.comment(`through Traefik (ms): ${viaTraefik.map((v) => v.toFixed(0)).join(' ')}`);
  t.comment(`floor (ms): ${floor.map((v) => v.toFixed(0)).join(' ')}`);
  t.comment(`take-over (Traefik's router serves the woken app, polled every 100 ms) p50 ${(percentile(takeOver, 50) / 1000).toFixed(1)} s, max ${(Math.max(...takeOver) / 1000).toFixed(1)} s: ${takeOver.map((v) => (v / 1000).toFixed(1)).join(' ')} s`);
});
