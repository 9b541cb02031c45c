/**
 * bench/results.json: each part carries exactly the issue's keys; everything else a part measured
 * (baselines, breakdowns, samples) goes under its `details`.
 */
type Json = Record<string, unknown>;

export const ISSUE_KEYS = {
  coldStart: ['floorP50Ms', 'activatorP50Ms', 'overheadP50Ms', 'overheadP95Ms'],
  burst: ['requests', 'ok', 'scaleUps', 'rssGrowthMb'],
  hotPath: ['directRps', 'nodeFloorRps', 'nginxRps', 'activatorRps', 'ratioVsNode', 'ratioVsNginx', 'p50AddedMsC1', 'cpuUsPerRequest', 'cpuRatioVsNode'],
  scale: ['services', 'discoveryMs', 'rssMb', 'unknownHostRps'],
  peer: ['activatorP50Ms', 'activatorP95Ms', 'sablierP50Ms', 'sablierP95Ms', 'ratioP50', 'idleAccuracy'],
  mondayMorning: ['apps', 'wakes', 'ok', 'overheadP50Ms', 'overheadP95Ms', 'dockerCalls', 'longestWaitMs', 'sablier'],
  burst10k: ['requests', 'ok', 'scaleUps', 'rssGrowthMb', 'rssPerHeldKb', 'limitedBy'],
  scale5k: ['services', 'discoveryMs', 'rssMb', 'unknownHostRps', 'ratioVsBare404'],
  viaTraefik: ['coldStart', 'hotPath', 'websocket'],
} as const;

function split(part: Json, keys: readonly string[]): Json {
  const out: Json = {};
  const details: Json = {};
  for (const [k, v] of Object.entries(part)) (keys.includes(k) ? out : details)[k] = v;
  for (const k of keys) if (!(k in out)) out[k] = null;
  return Object.keys(details).length > 0 ? { ...out, details } : out;
}

/** coldStart is keyed by startup delay ("0", "1000"); withHealthcheck has the same shape. */
function shapeColdStart(cold: Json): Json {
  const out: Json = {};
  const details: Json = {};
  for (const [k, v] of Object.entries(cold)) {
    if (/^\d+$/.test(k)) out[k] = split(v as Json, ISSUE_KEYS.coldStart);
    else if (k === 'withHealthcheck') out[k] = Object.fromEntries(Object.entries(v as Json).map(([d, r]) => [d, split(r as Json, ISSUE_KEYS.coldStart)]));
    else details[k] = v;
  }
  return Object.keys(details).length > 0 ? { ...out, details } : out;
}

export function shapeResults(results: Json): Json {
  const out: Json = {};
  for (const [part, value] of Object.entries(results)) {
    if (part === 'coldStart') out[part] = shapeColdStart(value as Json);
    else if (part in ISSUE_KEYS) out[part] = split(value as Json, ISSUE_KEYS[part as keyof typeof ISSUE_KEYS]);
    else out[part] = value;
  }
  return out;
}
