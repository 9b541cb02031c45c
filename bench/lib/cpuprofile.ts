/** Summarises a V8 .cpuprofile (node --cpu-prof): top self-time frames and self time per package. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Busy (non-idle) time sampled. */
  totalMs: number;
  top: Array<{ frame: string; selfMs: number; pct: number }>;
  byPackage: Array<{ pkg: string; selfMs: number; pct: number }>;
}

function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return 'node core';
  const src = /\/(src|bench)\/(.*)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  return url;
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*\/(src|bench)\//, '$1/');
}

export function summariseProfile(file: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const frames = new Map<string, number>();
  const pkgs = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    // Percentages are of busy time: an idle event loop is not a cost.
    if (functionName === '(idle)') continue;
    const key = `${functionName || '(anonymous)'} ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`.trim();
    frames.set(key, (frames.get(key) ?? 0) + us);
    const pkg = packageOf(url, functionName);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
    total += us;
  }
  const rank = <K extends string>(m: Map<string, number>, name: K) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, us]) => ({ [name]: k, selfMs: Math.round(us / 100) / 10, pct: Math.round((1000 * us) / total) / 10 }) as Record<K, string> & { selfMs: number; pct: number });
  return { totalMs: Math.round(total / 1000), top: rank(frames, 'frame'), byPackage: rank(pkgs, 'pkg') };
}

/** Inclusive (self + callees) busy time per function whose key matches `filter`. */
export function inclusiveTimes(file: string, filter: RegExp, topN = 30): Array<{ frame: string; inclusiveMs: number; pct: number }> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url ? shortUrl(n.callFrame.url) : ''}`.trim();
  const incl = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const leaf = byId.get(id);
    if (!leaf || leaf.callFrame.functionName === '(idle)') continue;
    busy += us;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const k = key(n);
      if (!seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + us);
      }
    }
  }
  return [...incl.entries()]
    .filter(([k]) => filter.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([frame, us]) => ({ frame, inclusiveMs: Math.round(us / 100) / 10, pct: Math.round((1000 * us) / busy) / 10 }));
}

export function formatProfile(title: string, s: ProfileSummary): string {
  const lines = [`${title}: ${s.totalMs} ms busy sampled`, '  top self-time frames:'];
  for (const f of s.top) lines.push(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.frame}`);
  lines.push('  self time by package:');
  for (const p of s.byPackage) lines.push(`    ${p.pct.toFixed(1).padStart(5)}%  ${p.pkg}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const filter = process.env.INCLUSIVE ? new RegExp(process.env.INCLUSIVE) : undefined;
  for (const f of process.argv.slice(2)) {
    console.log(formatProfile(f, summariseProfile(f, 25)));
    if (filter) for (const x of inclusiveTimes(f, filter, 40)) console.log(`    ${x.pct.toFixed(1).padStart(5)}%  ${x.frame}`);
  }
}
