/**
 * Cold start through the real Traefik against the direct floor of the same run, in alternating
 * cycles (SA_TRAEFIK_COLD_CYCLES, default 10 each). A measurement, printed; nothing is asserted on
 * the times (performance belongs to benchmarks, and this machine is shared).
 *   floor:   scale the app to 1 → first 200 from its task's host-mode published port on 127.0.0.1
 *            (polled every 10 ms), no activator, no Traefik.
 *   Traefik: a browser's HTTPS GET with the app's Host and SNI to Traefik's published port, while
 *            the app sleeps → catch-all → activator → wake → first byte of the answer.
 * Both apps run sa/sample-app with STARTUP_DELAY_MS=0 and no HEALTHCHECK, like `npm run bench`.
 * Before each Traefik cycle the app is asleep with no task left, and Traefik has dropped its router
 * again (a monitor request answered by the activator says so, without waking it).
 */
import t from 'tap';
import { request } from 'undici';
import { seedLabels, startRig, type EdgeRig } from '../helpers/traefik.js';
import { createApp, docker, freePort, runId, serviceState, waitFor } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

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

async function scale(name: string, replicas: number): Promise<void> {
  const s = (await docker.getService(name).inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
  await docker.getService(name).update({ _query: { version: s.Version.Index }, _body: { ...s.Spec, Mode: { Replicated: { Replicas: replicas } } } } as never);
}

async function noContainers(name: string): Promise<void> {
  await waitFor(`${name}: no container left`, async () => (await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name=${name}`] } })).length === 0, 30_000, 50);
}

t.test(`cold start through Traefik vs the direct floor, ${CYCLES} cycles each`, async (t) => {
  const port = await freePort();
  const floorApp = await createApp({ name: `${run}-floor`, run, on: rig.on, publishPort: port, healthIntervalMs: 0, env: { STARTUP_DELAY_MS: '0' }, labels: { [LABELS.enable]: 'false' } });
  t.teardown(floorApp.remove);
  const name = `${run}-cold`;
  const host = `cold.${run}.sa-test.example.com`;
  const app = await createApp({ name, run, on: rig.on, host, healthIntervalMs: 0, env: { STARTUP_DELAY_MS: '0' }, labels: seedLabels(name, host) });
  t.teardown(app.remove);
  await rig.activator.waitForApp(name);

  const floor: number[] = [];
  const viaTraefik: number[] = [];
  for (let i = 0; i < CYCLES; i++) {
    // Floor.
    const f0 = performance.now();
    await scale(floorApp.name, 1);
    for (;;) {
      const ok = await request(`http://127.0.0.1:${port}/health`, { headersTimeout: 250, bodyTimeout: 250, reset: true })
        .then(async (r) => (await r.body.text(), r.statusCode === 200))
        .catch(() => false);
      if (ok) break;
      if (performance.now() - f0 > 30_000) throw new Error('floor: no answer within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    floor.push(performance.now() - f0);
    await scale(floorApp.name, 0);
    await noContainers(floorApp.name);

    // Through Traefik, from a sleeping app that Traefik has no router for.
    await waitFor('Traefik routes the sleeping app to the activator', async () => {
      const r = await rig.edge.request(host, '/', { insecure: true, headers: { 'user-agent': MONITOR_UA } });
      return r.header('x-activator-state') === 'asleep';
    }, 30_000, 200);
    const res = await rig.edge.request(host, `/cold?i=${i}`, { insecure: true });
    t.equal(res.status, 200, `cycle ${i + 1}: woken through Traefik`);
    t.equal(res.header('x-activator-cold-start'), 'true', `cycle ${i + 1}: a cold start`);
    viaTraefik.push(res.ms);
    const put = await fetch(`${rig.activator.adminUrl}/api/apps/${name}/sleep`, { method: 'POST' });
    t.equal(put.status, 200, `cycle ${i + 1}: back to sleep`);
    await waitFor(`${name} at 0`, async () => (await serviceState(name)).replicas === 0, 10_000, 50);
    await noContainers(name);
  }
  const f50 = percentile(floor, 50);
  const a50 = percentile(viaTraefik, 50);
  t.comment(`cold start p50 over ${CYCLES} cycles: through Traefik ${a50.toFixed(0)} ms, direct floor ${f50.toFixed(0)} ms, difference ${(a50 - f50).toFixed(0)} ms (p95 ${percentile(viaTraefik, 95).toFixed(0)} / ${percentile(floor, 95).toFixed(0)} ms)`);
  t.comment(`through Traefik (ms): ${viaTraefik.map((v) => v.toFixed(0)).join(' ')}`);
  t.comment(`floor (ms): ${floor.map((v) => v.toFixed(0)).join(' ')}`);
});
