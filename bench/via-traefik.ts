/**
 * Through Traefik (issue 14 §2): the real Traefik (stack/traefik.yml, test/helpers/traefik.ts's rig)
 * in front, the activator behind its catch-all routers, one sample app with its own HTTPS router
 * (Traefik's default certificate: no ACME in the way). The app's activator hosts are its Host and
 * an alias that has no Traefik router, so the alias always takes the catch-all: Traefik → activator
 * → app, which is the path of the take-over window (a woken app before Traefik's next poll).
 *   coldStart: client → Traefik → activator → wake → first byte, against the direct floor (the
 *              cold-start prober on Traefik's network), alternating cycles from fully stopped.
 *   hotPath:   wrk through Traefik's HTTPS port, Host = the app (Traefik → app) against Host = the
 *              alias (Traefik → activator → app), interleaved rounds; plus one connection each for
 *              the added p50 latency, and the activator's CPU per request.
 *   websocket: one WebSocket each way (direct through Traefik, through Traefik and the activator's
 *              tunnel), N sequential echoes of 64 bytes: added p50 round trip per message, and the
 *              activator's CPU per message.
 */
import WebSocket from 'ws';
import { LABELS } from '../src/labels.js';
import { EDGE_NETWORK, startRig } from '../test/helpers/traefik.js';
import { createApp, runId, waitFor } from '../test/helpers/swarm.js';
import { startProber } from './cold-start.js';
import { cpuMsOf, onCleanup } from './lib/proc.js';
import { median, percentile, round } from './lib/stats.js';
import { containerOf, scaleTo, stopFully } from './lib/swarm.js';
import { wrk } from './lib/wrk.js';

export interface ViaTraefikOptions {
  cycles: number;
  durationS: number;
  rounds: number;
  wsMessages: number;
  log: (line: string) => void;
}

const MONITOR_UA = 'sa-bench-monitor';

async function echoes(url: string, host: string, count: number): Promise<number[]> {
  const ws = new WebSocket(url, { headers: { host }, rejectUnauthorized: false, handshakeTimeout: 10_000 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const payload = Buffer.alloc(64, 7);
  const times: number[] = [];
  const deadline = performance.now() + 60_000;
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('WebSocket echo timed out')), 5000);
        ws.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.send(payload);
      });
      times.push((performance.now() - t) * 1000);
    }
  } finally {
    ws.terminate();
  }
  return times;
}

export async function viaTraefik(opts: ViaTraefikOptions): Promise<Record<string, unknown>> {
  const run = runId('benchtf');
  const rig = await startRig({ run, env: { ACTIVATOR_WAKE_TIMEOUT: '60s', ACTIVATOR_MONITOR_USER_AGENTS: MONITOR_UA, ACTIVATOR_IDLE_TIMEOUT: '30m', ACTIVATOR_LOG_LEVEL: 'warn' } });
  const stopRig = onCleanup(() => rig.stop());
  try {
    const prober = await startProber(run, EDGE_NETWORK);
    const name = `${run}-app`;
    const host = `app.${run}.sa-test.example.com`;
    const alias = `via.${run}.sa-test.example.com`;
    const app = await createApp({
      name,
      run,
      on: rig.on,
      host,
      healthIntervalMs: 0,
      env: { STARTUP_DELAY_MS: '0' },
      labels: {
        [LABELS.hosts]: `${host},${alias}`,
        'traefik.enable': 'true',
        'traefik.swarm.network': EDGE_NETWORK,
        [`traefik.http.routers.${name}.rule`]: `Host(\`${host}\`)`,
        [`traefik.http.routers.${name}.entrypoints`]: 'https',
        [`traefik.http.routers.${name}.tls`]: 'true',
        [`traefik.http.services.${name}.loadbalancer.server.port`]: '80',
      },
    });
    const removeApp = onCleanup(() => app.remove());
    try {
      await rig.activator.waitForApp(name);
      const edge = rig.edge;
      const asleepBehindTraefik = () =>
        waitFor('Traefik routes the sleeping app to the activator', async () => {
          const r = await edge.request(host, '/', { insecure: true, headers: { 'user-agent': MONITOR_UA }, timeoutMs: 2000 }).catch(() => undefined);
          return r?.header('x-activator-state') === 'asleep';
        }, 60_000, 200);

      // --- cold start -------------------------------------------------------------------------
      const floor: number[] = [];
      const via: number[] = [];
      for (let i = 0; i < opts.cycles; i++) {
        await stopFully(name);
        await asleepBehindTraefik();
        const m = await fetch(`${prober.url}/measure?service=${encodeURIComponent(name)}&timeoutMs=60000&intervalMs=5`, { signal: AbortSignal.timeout(90_000) });
        const sample = (await m.json()) as { floorMs: number; error?: string };
        if (!m.ok) throw new Error(`prober: ${sample.error ?? m.status}`);
        floor.push(sample.floorMs);
        await stopFully(name);
        await asleepBehindTraefik();
        const res = await edge.request(host, `/cold?i=${i}`, { insecure: true });
        if (res.status !== 200 || res.header('x-activator-cold-start') !== 'true') throw new Error(`cold start through Traefik answered ${res.status} (cold-start header ${String(res.header('x-activator-cold-start'))})`);
        via.push(res.ms);
        opts.log(`  viaTraefik cold cycle ${i + 1}/${opts.cycles}: floor ${sample.floorMs.toFixed(0)} ms, through Traefik ${res.ms.toFixed(0)} ms`);
      }
      await prober.stop();
      const coldStart = {
        cycles: opts.cycles,
        floorP50Ms: round(percentile(floor, 50)),
        activatorP50Ms: round(percentile(via, 50)),
        overheadP50Ms: round(percentile(via, 50) - percentile(floor, 50)),
        overheadP95Ms: round(percentile(via, 95) - percentile(floor, 95)),
        samples: { floorMs: floor.map((v) => round(v)), viaTraefikMs: via.map((v) => round(v)) },
      };

      // --- hot path in the take-over window ----------------------------------------------------
      await scaleTo(name, 1);
      await waitFor("Traefik's own router serves the app", async () => {
        const r = await edge.request(host, '/', { insecure: true, timeoutMs: 2000 }).catch(() => undefined);
        return r !== undefined && rig.servedBy(r) === 'traefik';
      }, 60_000, 200);
      const viaAlias = await edge.request(alias, '/', { insecure: true });
      if (rig.servedBy(viaAlias) !== 'activator') throw new Error(`the alias was not served through the activator (status ${viaAlias.status})`);
      const actPid = (await containerOf(rig.activator.name)).pid;
      const url = `https://${edge.address}:${edge.httpsPort}/`;
      const rounds: Array<{ direct: number; activator: number; activatorCpuUsPerRequest: number }> = [];
      for (let r = 0; r < opts.rounds; r++) {
        const row = { direct: 0, activator: 0, activatorCpuUsPerRequest: 0 };
        for (const [k, h] of [['direct', host], ['activator', alias]] as const) {
          await wrk({ url, host: h, connections: 16, durationS: 1 });
          const cpu0 = cpuMsOf(actPid);
          const res = await wrk({ url, host: h, connections: 16, durationS: opts.durationS });
          if (res.socketErrors > 0 || res.non2xx > 0) throw new Error(`${k}: ${res.socketErrors} socket errors, ${res.non2xx} non-2xx`);
          row[k] = res.rps;
          if (k === 'activator') row.activatorCpuUsPerRequest = ((cpuMsOf(actPid) - cpu0) * 1000) / res.requests;
        }
        rounds.push(row);
        opts.log(`  viaTraefik hot round ${r + 1}: Traefik → app ${Math.round(row.direct)} req/s, Traefik → activator → app ${Math.round(row.activator)} req/s`);
      }
      const c1 = { direct: 0, activator: 0 };
      for (const [k, h] of [['direct', host], ['activator', alias]] as const) c1[k] = (await wrk({ url, host: h, connections: 1, durationS: 3 })).p50Ms;
      const d = median(rounds.map((r) => r.direct));
      const a = median(rounds.map((r) => r.activator));
      const hotPath = {
        traefikDirectRps: Math.round(d),
        traefikActivatorRps: Math.round(a),
        ratio: round(a / d, 3),
        p50AddedMsC1: round(c1.activator - c1.direct, 3),
        p50MsC1: { direct: c1.direct, activator: c1.activator },
        activatorCpuUsPerRequest: round(median(rounds.map((r) => r.activatorCpuUsPerRequest))),
        rounds: rounds.map((r) => ({ direct: Math.round(r.direct), activator: Math.round(r.activator) })),
      };

      // --- WebSocket tunnel ------------------------------------------------------------------
      const wsUrl = `wss://${edge.address}:${edge.httpsPort}/ws`;
      const ws = { direct: [] as number[], activator: [] as number[], cpuMs: 0, messages: 0 };
      for (let r = 0; r < 2; r++) {
        ws.direct.push(...(await echoes(wsUrl, host, opts.wsMessages)));
        const cpu0 = cpuMsOf(actPid);
        const times = await echoes(wsUrl, alias, opts.wsMessages);
        ws.cpuMs += cpuMsOf(actPid) - cpu0;
        ws.messages += times.length;
        ws.activator.push(...times);
      }
      const websocket = {
        messages: ws.messages,
        directP50Us: round(percentile(ws.direct, 50)),
        activatorP50Us: round(percentile(ws.activator, 50)),
        addedUsPerMessageP50: round(percentile(ws.activator, 50) - percentile(ws.direct, 50)),
        addedUsPerMessageP95: round(percentile(ws.activator, 95) - percentile(ws.direct, 95)),
        // Includes the upgrade and the connection's set-up and teardown, spread over its messages.
        activatorCpuUsPerMessage: round((ws.cpuMs * 1000) / Math.max(1, ws.messages)),
      };
      opts.log(`  viaTraefik websocket: echo p50 ${websocket.directP50Us} µs direct, ${websocket.activatorP50Us} µs through the activator; activator CPU ${websocket.activatorCpuUsPerMessage} µs/message`);
      await stopFully(name);
      return { coldStart, hotPath, websocket, method: 'HTTPS to Traefik on loopback (its default certificate); floor: the cold-start prober' };
    } finally {
      await removeApp();
    }
  } finally {
    await stopRig();
  }
}
