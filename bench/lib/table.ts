/** The results table printed at the end of `npm run bench` (targets from issue 5). */

type Json = Record<string, unknown>;
interface Row {
  part: string;
  metric: string;
  value: string;
  target: string;
  met: string;
}

const fmt = (v: unknown): string => {
  if (typeof v !== 'number') return v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  // Three decimals below 10: ratios near 1 (1.046) must not round onto a target's edge.
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);
};

function row(part: string, metric: string, value: unknown, target?: { op: '<=' | '>=' | '=='; limit: number; text?: string }): Row {
  let met = '';
  if (target && typeof value === 'number' && Number.isFinite(value)) {
    const ok = target.op === '<=' ? value <= target.limit : target.op === '>=' ? value >= target.limit : value === target.limit;
    met = ok ? 'yes' : 'NO';
  }
  return { part, metric, value: fmt(value), target: target ? (target.text ?? `${target.op === '==' ? '=' : target.op === '<=' ? '≤' : '≥'} ${target.limit}`) : '', met };
}

export function tableRows(results: Json): Row[] {
  const rows: Row[] = [];
  const cold = results.coldStart as Json | undefined;
  if (cold) {
    for (const [variant, label] of [['byDelay', 'no healthcheck'], ['withHealthcheck', 'HEALTHCHECK 1s']] as const) {
      const byDelay = (variant === 'byDelay' ? cold : cold.withHealthcheck) as Json | undefined;
      if (!byDelay) continue;
      for (const [delay, v] of Object.entries(byDelay)) {
        if (!/^\d+$/.test(delay)) continue;
        const r = v as Json;
        const part = `coldStart ${delay} ms (${label})`;
        rows.push(row(part, 'floorP50Ms', r.floorP50Ms));
        rows.push(row(part, 'activatorP50Ms', r.activatorP50Ms));
        rows.push(row(part, 'overheadP50Ms', r.overheadP50Ms, variant === 'byDelay' ? { op: '<=', limit: 25 } : undefined));
        rows.push(row(part, 'overheadP95Ms', r.overheadP95Ms, variant === 'byDelay' ? { op: '<=', limit: 100 } : undefined));
        const d = (r.details ?? {}) as Json;
        rows.push(row(part, 'overheadP50Ms from container start', d.afterStartOverheadP50Ms));
        rows.push(row(part, 'Swarm: scale call → running', d.runningP50Ms));
      }
    }
  }
  const burst = results.burst as Json | undefined;
  if (burst) {
    rows.push(row('burst', 'requests', burst.requests));
    rows.push(row('burst', 'ok', burst.ok, { op: '==', limit: Number(burst.requests), text: `= ${fmt(burst.requests)}` }));
    rows.push(row('burst', 'scaleUps', burst.scaleUps, { op: '==', limit: 1 }));
    rows.push(row('burst', 'rssGrowthMb', burst.rssGrowthMb, { op: '<=', limit: 30 }));
  }
  const hot = results.hotPath as Json | undefined;
  if (hot) {
    for (const k of ['directRps', 'nodeFloorRps', 'nginxRps', 'activatorRps']) rows.push(row('hotPath', k, hot[k]));
    rows.push(row('hotPath', 'fastifyReplyFromRps (ref.)', (hot.details as Json | undefined)?.fastifyReplyFromRps));
    rows.push(row('hotPath', 'ratioVsNode', hot.ratioVsNode, { op: '>=', limit: 0.9 }));
    rows.push(row('hotPath', 'ratioVsNginx', hot.ratioVsNginx, { op: '>=', limit: 0.45 }));
    rows.push(row('hotPath', 'p50AddedMsC1', hot.p50AddedMsC1, { op: '<=', limit: 0.5 }));
    const cpu = hot.cpuUsPerRequest as Json | undefined;
    rows.push(row('hotPath', 'cpuUsPerRequest nodeFloor', cpu?.nodeFloor));
    rows.push(row('hotPath', 'cpuUsPerRequest activator', cpu?.activator));
    rows.push(row('hotPath', 'cpuRatioVsNode', hot.cpuRatioVsNode));
  }
  const scale = results.scale as Json | undefined;
  if (scale) {
    rows.push(row('scale', 'services', scale.services));
    rows.push(row('scale', 'discoveryMs', scale.discoveryMs, { op: '<=', limit: 3000 }));
    rows.push(row('scale', 'rssMb', scale.rssMb, { op: '<=', limit: 150 }));
    rows.push(row('scale', 'unknownHostRps', scale.unknownHostRps, { op: '>=', limit: 20000 }));
    const d = (scale.details ?? {}) as Json;
    rows.push(row('scale', 'bare404Rps (same path)', d.bare404Rps));
    rows.push(row('scale', 'ratioVsBare404', d.ratioVsBare404));
  }
  const peer = results.peer as Json | undefined;
  if (peer) {
    const d = (peer.details ?? {}) as Json;
    rows.push(row('peer (Sablier)', 'built', d.built === true ? `yes (${String(d.sablierVersion)})` : `no (${String(d.sablierVersion)})`));
    for (const k of ['activatorP50Ms', 'activatorP95Ms', 'sablierP50Ms', 'sablierP95Ms', 'ratioP50']) rows.push(row('peer (Sablier)', k, peer[k] ?? '—'));
  }
  const monday = results.mondayMorning as Json | undefined;
  if (monday) {
    const part = `mondayMorning ${fmt(monday.wakes)} of ${fmt(monday.apps)}`;
    const d = (monday.details ?? {}) as Json;
    rows.push(row(part, 'ok', monday.ok, { op: '==', limit: Number(monday.wakes), text: `= ${fmt(monday.wakes)}` }));
    rows.push(row(part, 'floorP50Ms (each alone)', d.floorP50Ms));
    rows.push(row(part, 'overheadP50Ms', monday.overheadP50Ms));
    rows.push(row(part, 'overheadP95Ms', monday.overheadP95Ms, { op: '<=', limit: 250 }));
    rows.push(row(part, 'longestWaitMs', monday.longestWaitMs));
    rows.push(row(part, 'dockerCalls', monday.dockerCalls));
    rows.push(row(part, 'direct wave (no activator) p50 / p95', `${fmt(d.directConcurrentP50Ms)} / ${fmt(d.directConcurrentP95Ms)}`));
    rows.push(row(part, 'over the direct wave p50 / p95', `${fmt(d.overVsConcurrentFloorP50Ms)} / ${fmt(d.overVsConcurrentFloorP95Ms)}`));
  }
  const b10k = results.burst10k as Json | undefined;
  if (b10k) {
    rows.push(row('burst10k', 'requests', b10k.requests));
    rows.push(row('burst10k', 'ok', b10k.ok, { op: '==', limit: Number(b10k.requests), text: `= ${fmt(b10k.requests)}` }));
    rows.push(row('burst10k', 'scaleUps', b10k.scaleUps, { op: '==', limit: 1 }));
    rows.push(row('burst10k', 'rssGrowthMb', b10k.rssGrowthMb));
    const d10k = (b10k.details ?? {}) as Json;
    rows.push(row('burst10k', 'held at once / RSS growth while held (MB)', `${fmt(d10k.heldCount)} / ${fmt(d10k.rssHeldGrowthMb)}`));
    rows.push(row('burst10k', 'rssPerHeldKb', b10k.rssPerHeldKb, { op: '<=', limit: 10 }));
  }
  const s5k = results.scale5k as Json | undefined;
  if (s5k) {
    rows.push(row('scale5k', 'services', s5k.services));
    rows.push(row('scale5k', 'discoveryMs', s5k.discoveryMs, { op: '<=', limit: 5000 }));
    rows.push(row('scale5k', 'rssMb', s5k.rssMb, { op: '<=', limit: 200 }));
    rows.push(row('scale5k', 'unknownHostRps', s5k.unknownHostRps));
    rows.push(row('scale5k', 'ratioVsBare404', s5k.ratioVsBare404, { op: '>=', limit: 0.8 }));
  }
  const via = results.viaTraefik as Json | undefined;
  if (via) {
    const cold = (via.coldStart ?? {}) as Json;
    const hot = (via.hotPath ?? {}) as Json;
    const ws = (via.websocket ?? {}) as Json;
    rows.push(row('viaTraefik cold start', 'floorP50Ms', cold.floorP50Ms));
    rows.push(row('viaTraefik cold start', 'activatorP50Ms', cold.activatorP50Ms));
    rows.push(row('viaTraefik cold start', 'overheadP50Ms', cold.overheadP50Ms));
    rows.push(row('viaTraefik cold start', 'overheadP95Ms', cold.overheadP95Ms));
    rows.push(row('viaTraefik hot path', 'traefikDirectRps', hot.traefikDirectRps));
    rows.push(row('viaTraefik hot path', 'traefikActivatorRps', hot.traefikActivatorRps));
    rows.push(row('viaTraefik hot path', 'ratio', hot.ratio));
    rows.push(row('viaTraefik hot path', 'p50AddedMsC1', hot.p50AddedMsC1));
    rows.push(row('viaTraefik websocket', 'addedUsPerMessageP50', ws.addedUsPerMessageP50));
    rows.push(row('viaTraefik websocket', 'activatorCpuUsPerMessage', ws.activatorCpuUsPerMessage));
  }
  return rows;
}

export function formatTable(results: Json): string {
  const rows = tableRows(results);
  const head: Row = { part: 'part', metric: 'metric', value: 'value', target: 'target', met: 'met' };
  const all = [head, ...rows];
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row) => `${r.part.padEnd(w('part'))}  ${r.metric.padEnd(w('metric'))}  ${r.value.padStart(w('value'))}  ${r.target.padEnd(w('target'))}  ${r.met}`;
  return [line(head), '-'.repeat(line(head).length), ...rows.map(line)].join('\n');
}
