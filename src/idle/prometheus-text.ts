/**
 * A small parser for the Prometheus text exposition format (version 0.0.4, what Traefik serves):
 *   # HELP / # TYPE lines and other comments are skipped;
 *   name{label="value",...} value [timestamp]   label values may hold \\ \" \n escapes;
 *   values may be NaN, +Inf, -Inf. Malformed lines are skipped, never fatal.
 * prom-client only writes this format, and the npm parsers are unmaintained or untyped, so it is
 * done here in a few lines.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;

/** Parses every sample, or only those whose metric name is in `names`. */
export function parsePrometheusText(text: string, names?: ReadonlySet<string>): Sample[] {
  const samples: Sample[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseLine(line, names);
    if (sample) samples.push(sample);
  }
  return samples;
}

function parseLine(line: string, names: ReadonlySet<string> | undefined): Sample | undefined {
  NAME.lastIndex = 0;
  const nameMatch = NAME.exec(line);
  if (!nameMatch) return undefined;
  const name = nameMatch[0];
  if (names && !names.has(name)) return undefined;
  let i = skipSpaces(line, NAME.lastIndex);
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      i = skipSpaces(line, i);
      if (line[i] === '}') {
        i++;
        break;
      }
      LABEL_NAME.lastIndex = i;
      const labelMatch = LABEL_NAME.exec(line);
      if (!labelMatch) return undefined;
      i = skipSpaces(line, LABEL_NAME.lastIndex);
      if (line[i] !== '=') return undefined;
      i = skipSpaces(line, i + 1);
      if (line[i] !== '"') return undefined;
      i++;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined; // unterminated
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : (next ?? '');
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      labels[labelMatch[0]] = value;
      i = skipSpaces(line, i + 1);
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return undefined;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0]);
  if (value === undefined) return undefined;
  return { name, labels, value };
}

function skipSpaces(line: string, i: number): number {
  while (line[i] === ' ' || line[i] === '\t') i++;
  return i;
}

function parseValue(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'NaN') return NaN;
  if (raw === '+Inf' || raw === 'Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  const n = Number(raw);
  return Number.isNaN(n) ? undefined : n;
}
