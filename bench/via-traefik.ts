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
 *   websocket: the tunnel's cost per WebSocket message (issue 11). Two awake apps with their own
 *              routers: the app's WebSocket goes through the activator's WebSocket router (provider
 *              on: Traefik → activator tunnel → app); a twin with swarm-activator.traefik.long-lived
 *              =false has no such router (Traefik → app). Who connected is checked on each socket
 *              (the sample app's /whoami). Interleaved rounds of N sequential 64-byte echoes each
 *              way: added p50/p95 round trip per message, and CPU per message of the activator and
 *              of Traefik, each way.
 * `parts` picks which of the three run (BENCH_VIA_PARTS); all by default.
 */
import WebSocket from 'ws';
import { LABELS } from '../src/labels.js';
import { EDGE_NETWORK, startRig, type EdgeRig } from '../test/helpers/traefik.js';
import { createApp, runId, waitFor } from '../test/helpers/swarm.js';
import { startProber } from './cold-start.js';
import { cpuMsOf, onCleanup } from './lib/proc.js';
import { median, percentile, round } from './lib/stats.js';
import { containerOf, scaleTo, stopFully } from './lib/swarm.js';
import { wrk } from './lib/wrk.js';

export const VIA_TRAEFIK_PARTS = ['coldStart', 'hotPath', 'websocket'] as const;
export type ViaTraefikPart = (typeof VIA_TRAEFIK_PARTS)[number];

export interface ViaTraefikOptions {
  parts?: readonly ViaTraefikPart[];
  cycles: number;
  durationS: number;
  rounds: number;
  wsMessages: number;
  log: (line: string) => void;
}

const MONITOR_UA = 'sa-bench-monitor';

/** An HTTPS router of the app's own for `host` (Traefik's default certificate). */
function ownRouter(name: string, host: string): Record<string, string> {
  return {
    'traefik.enable': 'true',
    'traefik.swarm.network': EDGE_NETWORK,
    [`traefik.http.routers.${name}.rule`]: `Host(\`${host}\`)`,
    [`traefik.http.routers.${name}.entrypoints`]: 'https',
    [`traefik.http.routers.${name}.tls`]: 'true',
    [`traefik.http.services.${name}.loadbalancer.server.port`]: '80',
  };
}

/** A WebSocket on the sample app's /whoami: who connected to the app, then `count` sequential echoes (µs each). */
async function echoes(url: string, host: string, count: number): Promise<{ connectedBy: string; times: number[] }> {
  const ws = new WebSocket(url, { headers: { host }, rejectUnauthorized: false, handshakeTimeout: 10_000 });
  const next = () =>
    new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('WebSocket message timed out')), 5000);
      ws.once('message', (m: Buffer) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  const hello = next();
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const payload = Buffer.alloc(64, 7);
  const times: number[] = [];
  const deadline = performance.now() + 60_000;
  try {
    const connectedBy = (JSON.parse((await hello).toString()) as { remoteAddress: string }).remoteAddress;
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const t = performance.now();
      const echoed = next();
      ws.send(payload);
      await echoed;
      times.push((performance.now() - t) * 1000);
    }
    return { connectedBy, times };
  } finally {
    ws.terminate();
  }
}

export async function viaTraefik(opts: ViaTraefikOptions): Promise<Record<string, unknown>> {
  const run = runId('benchtf');
  const rig = await startRig({ run, env: { ACTIVATOR_WAKE_TIMEOUT: '60s', ACTIVATOR_MONITOR_USER_AGENTS: MONITOR_UA, ACTIVATOR_IDLE_TIMEOUT: '30m', ACTIVATOR_LOG_LEVEL: 'warn' } });
  const stopRig = onCleanup(() => rig.stop());
  try {
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
        ...ownRouter(name, host),
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

      const parts = new Set(opts.parts ?? VIA_TRAEFIK_PARTS);
      const results: Record<string, unknown> = {};
      // --- cold start -------------------------------------------------------------------------
      if (parts.has('coldStart')) {
        const prober = await startProber(run, EDGE_NETWORK);
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
        results.coldStart = {
          cycles: opts.cycles,
          floorP50Ms: round(percentile(floor, 50)),
          activatorP50Ms: round(percentile(via, 50)),
          overheadP50Ms: round(percentile(via, 50) - percentile(floor, 50)),
          overheadP95Ms: round(percentile(via, 95) - percentile(floor, 95)),
          samples: { floorMs: floor.map((v) => round(v)), viaTraefikMs: via.map((v) => round(v)) },
        };
      }

      await scaleTo(name, 1);
      await waitFor("Traefik's own router serves the app", async () => {
        const r = await edge.request(host, '/', { insecure: true, timeoutMs: 2000 }).catch(() => undefined);
        return r !== undefined && rig.servedBy(r) === 'traefik';
      }, 60_000, 200);
      const actPid = (await containerOf(rig.activator.name)).pid;
      // --- hot path in the take-over window ----------------------------------------------------
      if (parts.has('hotPath')) {
        const viaAlias = await edge.request(alias, '/', { insecure: true });
        if (rig.servedBy(viaAlias) !== 'activator') throw new Error(`the alias was not served through the activator (status ${viaAlias.status})`);
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
        results.hotPath = {
          traefikDirectRps: Math.round(d),
          traefikActivatorRps: Math.round(a),
          ratio: round(a / d, 3),
          p50AddedMsC1: round(c1.activator - c1.direct, 3),
          p50MsC1: { direct: c1.direct, activator: c1.activator },
          activatorCpuUsPerRequest: round(median(rounds.map((r) => r.activatorCpuUsPerRequest))),
          rounds: rounds.map((r) => ({ direct: Math.round(r.direct), activator: Math.round(r.activator) })),
        };
      }

      // --- WebSocket tunnel ------------------------------------------------------------------
      if (parts.has('websocket')) results.websocket = await websocketTunnel(rig, run, name, host, actPid, opts);
      await stopFully(name);
      return { ...results, method: 'HTTPS to Traefik on loopback (its default certificate); floor: the cold-start prober' };
    } finally {
      await removeApp();
    }
  } finally {
    await stopRig();
  }
}

/**
 * Through Traefik → the activator's WebSocket router → its tunnel → the app, against Traefik → a
 * twin app directly (long-lived=false: no WebSocket router of the activator's for it).
 */
async function websocketTunnel(rig: EdgeRig, run: string, name: string, host: string, actPid: number, opts: ViaTraefikOptions): Promise<Record<string, unknown>> {
  const twin = `${name}-direct`;
  const twinHost = `direct.${host}`;
  const app = await createApp({
    name: twin,
    run,
    on: rig.on,
    host: twinHost,
    replicas: 1,
    healthIntervalMs: 0,
    labels: {
      [LABELS.traefikLongLived]: 'false',
      ...ownRouter(twin, twinHost),
    },
  });
  const removeTwin = onCleanup(() => app.remove());
  try {
    const edge = rig.edge;
    await rig.activator.waitForApp(twin);
    const wsUrl = `wss://${edge.address}:${edge.httpsPort}/whoami`;
    // Both paths as they should be before measuring: Traefik polls the provider every 2 s.
    await waitFor("the app's WebSocket through the activator's router", async () => (await echoes(wsUrl, host, 1).catch(() => undefined))?.connectedBy === rig.activatorIp, 60_000, 500);
    await waitFor("the twin's WebSocket straight from Traefik", async () => (await echoes(wsUrl, twinHost, 1).catch(() => undefined))?.connectedBy === edge.taskIp, 60_000, 500);
    const traefikPid = (await containerOf(edge.service)).pid;
    const sides = {
      direct: { times: [] as number[], activatorCpuMs: 0, traefikCpuMs: 0 },
      activator: { times: [] as number[], activatorCpuMs: 0, traefikCpuMs: 0 },
    };
    const rounds = 4;
    for (let r = 0; r < rounds; r++) {
      for (const [side, h, by] of [['direct', twinHost, edge.taskIp], ['activator', host, rig.activatorIp]] as const) {
        const act0 = cpuMsOf(actPid);
        const tr0 = cpuMsOf(traefikPid);
        const got = await echoes(wsUrl, h, Math.ceil(opts.wsMessages / rounds));
        sides[side].activatorCpuMs += cpuMsOf(actPid) - act0;
        sides[side].traefikCpuMs += cpuMsOf(traefikPid) - tr0;
        if (got.connectedBy !== by) throw new Error(`websocket ${side}: connected to the app by ${got.connectedBy}, not ${by}`);
        sides[side].times.push(...got.times);
      }
    }
    const perMessage = (ms: number, n: number) => round((ms * 1000) / Math.max(1, n));
    const d = sides.direct;
    const a = sides.activator;
    const websocket = {
      messages: { direct: d.times.length, activator: a.times.length },
      directP50Us: round(percentile(d.times, 50)),
      activatorP50Us: round(percentile(a.times, 50)),
      addedUsPerMessageP50: round(percentile(a.times, 50) - percentile(d.times, 50)),
      addedUsPerMessageP95: round(percentile(a.times, 95) - percentile(d.times, 95)),
      // Each includes the upgrade and the connection's set-up and teardown, spread over its messages.
      activatorCpuUsPerMessage: perMessage(a.activatorCpuMs, a.times.length),
      activatorCpuUsPerMessageDirect: perMessage(d.activatorCpuMs, d.times.length),
      traefikCpuUsPerMessage: { direct: perMessage(d.traefikCpuMs, d.times.length), activator: perMessage(a.traefikCpuMs, a.times.length) },
      paths: { direct: 'Traefik → app (long-lived=false)', activator: "Traefik → activator's WebSocket router → tunnel → app" },
    };
    opts.log(`  viaTraefik websocket: echo p50 ${websocket.directP50Us} µs Traefik → app, ${websocket.activatorP50Us} µs through the activator's tunnel (+${websocket.addedUsPerMessageP50} µs); activator CPU ${websocket.activatorCpuUsPerMessage} µs/message (${websocket.activatorCpuUsPerMessageDirect} on the direct path); Traefik CPU ${websocket.traefikCpuUsPerMessage.direct} / ${websocket.traefikCpuUsPerMessage.activator} µs/message`);
    return websocket;
  } finally {
    await removeTwin();
  }
}
