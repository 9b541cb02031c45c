/**
 * Small readers and writers for the parts of a compose/stack file the labeller touches: service
 * labels (list or map form), ports/expose, and networks. Everything else in the file is passed
 * through untouched for `docker stack deploy` to interpret.
 */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonMap = { [key: string]: Json };

export function isMap(value: unknown): value is JsonMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A YAML value as the user would recognise it in an error message (a map or list as JSON). */
export function describeValue(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** Service labels in the order the user wrote them, and the form (list of k=v, or map) they used. */
export interface LabelSet {
  form: 'list' | 'map';
  entries: Array<[string, string]>;
}

export type LabelsRead = { ok: true; labels: LabelSet } | { ok: false; message: string };

/** Compose accepts `labels: [k=v, ...]` or `labels: {k: v}`; absent means an empty list. */
export function readLabels(raw: unknown): LabelsRead {
  if (raw === undefined || raw === null) return { ok: true, labels: { form: 'list', entries: [] } };
  if (Array.isArray(raw)) {
    const entries: Array<[string, string]> = [];
    for (const item of raw) {
      if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') {
        return { ok: false, message: `list entries must be "key=value" strings, got ${JSON.stringify(item)}` };
      }
      const text = describeValue(item);
      const eq = text.indexOf('=');
      entries.push(eq < 0 ? [text.trim(), ''] : [text.slice(0, eq).trim(), text.slice(eq + 1)]);
    }
    return { ok: true, labels: { form: 'list', entries } };
  }
  if (isMap(raw)) {
    const entries: Array<[string, string]> = [];
    for (const [key, value] of Object.entries(raw)) {
      if (isMap(value) || Array.isArray(value)) {
        return { ok: false, message: `the value of "${key}" must be a string, got ${JSON.stringify(value)}` };
      }
      entries.push([key, value === null ? '' : String(value)]);
    }
    return { ok: true, labels: { form: 'map', entries } };
  }
  return { ok: false, message: `must be a list of "key=value" strings or a map, got ${JSON.stringify(raw)}` };
}

export function labelsToObject(set: LabelSet): Record<string, string> {
  return Object.fromEntries(set.entries);
}

/** Back to the form the user wrote (a list for a new `labels:`, as in the seed deployment). */
export function writeLabels(set: LabelSet): Json {
  if (set.form === 'map') return Object.fromEntries(set.entries);
  return set.entries.map(([k, v]) => `${k}=${v}`);
}

/** Sets or replaces labels in place (order kept for existing keys; new keys appended). */
export function upsertLabels(set: LabelSet, labels: Record<string, string>): LabelSet {
  const entries = set.entries.map(([k, v]): [string, string] => [k, Object.hasOwn(labels, k) ? (labels[k] as string) : v]);
  const have = new Set(entries.map(([k]) => k));
  for (const [k, v] of Object.entries(labels)) if (!have.has(k)) entries.push([k, v]);
  return { form: set.form, entries };
}

export interface DetectedPort {
  port: number;
  /** Where it came from, for messages: "expose[0]", "ports[1]". */
  key: string;
  /** True when the port is also published on the host (ports: with a published side). */
  published: boolean;
}

export type PortRead = { ok: true; found: DetectedPort | undefined } | { ok: false; key: string; message: string };

function parsePortNumber(text: string): number | undefined {
  const first = text.trim().split('-')[0] ?? '';
  if (!/^\d+$/.test(first)) return undefined;
  const n = Number(first);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** The first TCP container port of `expose:`, else of `ports:` (short or long syntax). */
export function detectPort(service: JsonMap): PortRead {
  const expose = service.expose;
  if (expose !== undefined && expose !== null) {
    if (!Array.isArray(expose)) return { ok: false, key: 'expose', message: 'must be a list of ports' };
    for (const [i, item] of expose.entries()) {
      const text = describeValue(item);
      if (/\/udp$/i.test(text)) continue;
      const port = parsePortNumber(text.replace(/\/tcp$/i, ''));
      if (port === undefined) return { ok: false, key: `expose[${i}]`, message: `"${text}" is not a port` };
      return { ok: true, found: { port, key: `expose[${i}]`, published: false } };
    }
  }
  const ports = service.ports;
  if (ports !== undefined && ports !== null) {
    if (!Array.isArray(ports)) return { ok: false, key: 'ports', message: 'must be a list' };
    for (const [i, item] of ports.entries()) {
      const key = `ports[${i}]`;
      if (isMap(item)) {
        if (typeof item.protocol === 'string' && item.protocol.toLowerCase() === 'udp') continue;
        const port = item.target === undefined || item.target === null ? undefined : parsePortNumber(describeValue(item.target));
        if (port === undefined) return { ok: false, key: `${key}.target`, message: `"${describeValue(item.target)}" is not a port` };
        return { ok: true, found: { port, key, published: item.published !== undefined && item.published !== null } };
      }
      let text = describeValue(item).trim();
      if (/\/udp$/i.test(text)) continue;
      text = text.replace(/\/tcp$/i, '');
      // [ip:]published:target, or just target ("80"); ip may be [v6].
      const parts = text.replace(/^\[[^\]]*\]:/, 'ip:').split(':');
      const target = parts[parts.length - 1] ?? '';
      const port = parsePortNumber(target);
      if (port === undefined) return { ok: false, key, message: `"${describeValue(item)}" is not a port mapping` };
      return { ok: true, found: { port, key, published: parts.length > 1 } };
    }
  }
  return { ok: true, found: undefined };
}

/** Adds `network` to a service's networks, keeping the list/map form; "default" is kept when implicit. */
export function attachNetwork(service: JsonMap, network: string): void {
  const nets = service.networks;
  if (nets === undefined || nets === null) {
    // No networks: means "default" only; keep it so the service still reaches its stack siblings.
    service.networks = ['default', network];
  } else if (Array.isArray(nets)) {
    if (!nets.includes(network)) nets.push(network);
  } else if (isMap(nets)) {
    if (!Object.hasOwn(nets, network)) nets[network] = null;
  }
}
