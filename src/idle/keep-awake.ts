/**
 * Keep-awake windows (label swarm-activator.keep-awake): when an app must not sleep, e.g.
 * `Mon-Fri 08:00-18:00` or `Mon-Fri 08:00-12:30, Sat 10:00-14:00`, in an IANA time zone.
 * Pure: parse a window spec, and find the span that covers an instant and the next one.
 * Wall-clock times go through luxon, so DST changes land where the zone's clocks say.
 */
import { DateTime, IANAZone } from 'luxon';

export interface KeepAwakeWindow {
  /** ISO weekdays (1 = Monday … 7 = Sunday) on which the window starts. */
  days: ReadonlySet<number>;
  /** Minutes after local midnight; end ≤ start means the window ends the next day. */
  startMinute: number;
  endMinute: number;
}

export interface KeepAwakeSchedule {
  /** The label's text, as written (trimmed). */
  spec: string;
  windows: KeepAwakeWindow[];
  timezone: string;
  /** Woken this long before each window starts. */
  leadMs: number;
}

export interface Span {
  start: number;
  end: number;
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

function parseDay(text: string, window: string): number {
  const i = DAYS.indexOf(text.toLowerCase().slice(0, 3) as (typeof DAYS)[number]);
  const full = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
  if (i < 0 || !(text.length === 3 || full[i] === text.toLowerCase())) {
    throw new Error(`"${window}": "${text}" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  }
  return i + 1;
}

function parseTime(text: string, window: string, end: boolean): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  const h = m ? Number(m[1]) : NaN;
  const min = m ? Number(m[2]) : NaN;
  if (!m || min > 59 || h > 24 || (h === 24 && (min !== 0 || !end))) {
    throw new Error(`"${window}": "${text}" is not a time (HH:MM, 00:00 to 23:59${end ? ', or 24:00' : ''})`);
  }
  return h * 60 + min;
}

/**
 * `[days] HH:MM-HH:MM[, …]`. Days: `Mon`, `Mon-Fri`, `Fri-Mon` (wraps), `daily`, or none (every
 * day); they name the day a window starts. `22:00-02:00` ends the next morning. Throws with
 * a message that quotes the faulty part.
 */
export function parseWindows(spec: string): KeepAwakeWindow[] {
  const parts = spec.split(',').map((p) => p.trim());
  if (spec.trim() === '' || parts.some((p) => p === '')) throw new Error(`"${spec}": expected windows such as "Mon-Fri 08:00-18:00", separated by commas`);
  return parts.map((part) => {
    const m = /^(?:([A-Za-z]+)(?:\s*-\s*([A-Za-z]+))?\s+)?(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$/.exec(part);
    if (!m) throw new Error(`"${part}": expected "[days] HH:MM-HH:MM", e.g. "Mon-Fri 08:00-18:00"`);
    const [, from, to, startText, endText] = m;
    const days = new Set<number>();
    if (from === undefined || (to === undefined && from.toLowerCase() === 'daily')) {
      for (let d = 1; d <= 7; d++) days.add(d);
    } else {
      const a = parseDay(from, part);
      const b = to === undefined ? a : parseDay(to, part);
      for (let d = a; ; d = (d % 7) + 1) {
        days.add(d);
        if (d === b) break;
      }
    }
    const startMinute = parseTime(startText as string, part, false);
    const endMinute = parseTime(endText as string, part, true);
    if (startMinute === endMinute) throw new Error(`"${part}": the window is empty (start = end)`);
    return { days, startMinute, endMinute };
  });
}

export function isValidTimezone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

export function parseTimezone(zone: string): string {
  const z = zone.trim();
  if (!isValidTimezone(z)) throw new Error(`"${zone}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`);
  return z;
}

/** Every window occurrence that ends after `from` and starts before `to`, merged where they touch. */
export function spansBetween(schedule: Pick<KeepAwakeSchedule, 'windows' | 'timezone'>, from: number, to: number): Span[] {
  const zone = schedule.timezone;
  const spans: Span[] = [];
  // A window starts on a local day and lasts at most 24 h: start a day early.
  let day = DateTime.fromMillis(from, { zone }).startOf('day').minus({ days: 1 });
  const last = DateTime.fromMillis(to, { zone }).startOf('day');
  for (; day <= last; day = day.plus({ days: 1 })) {
    for (const w of schedule.windows) {
      if (!w.days.has(day.weekday)) continue;
      const start = atMinute(day, w.startMinute).toMillis();
      const end = atMinute(w.endMinute <= w.startMinute ? day.plus({ days: 1 }) : day, w.endMinute).toMillis();
      if (end > from && start < to && end > start) spans.push({ start, end });
    }
  }
  spans.sort((a, b) => a.start - b.start);
  const merged: Span[] = [];
  for (const s of spans) {
    const prev = merged.at(-1);
    if (prev && s.start <= prev.end) prev.end = Math.max(prev.end, s.end);
    else merged.push({ ...s });
  }
  return merged;
}

/** Local wall time `minute` minutes into `day` (a nonexistent time, in a DST gap, moves forward). */
function atMinute(day: DateTime, minute: number): DateTime {
  if (minute === 1440) return day.plus({ days: 1 }).startOf('day');
  return day.set({ hour: Math.floor(minute / 60), minute: minute % 60, second: 0, millisecond: 0 });
}

export interface KeepAwakeState {
  /** Inside a window right now. */
  active: boolean;
  /** Inside a window or its lead time: the app must be awake and is never put to sleep. */
  holding: boolean;
  /** The window that holds the app now (lead time included in `holding`, not in `start`). */
  current: Span | null;
  /** The next window that starts after now. */
  next: Span | null;
}

const HORIZON_MS = 9 * 86_400_000;
const cache = new WeakMap<KeepAwakeSchedule, { validUntil: number; computedAt: number; spans: Span[] }>();

/**
 * Where `now` stands against the schedule. Spans are cached per schedule object (a new label
 * gives a new policy, so a new object) until the first boundary after the instant they were
 * computed for, so an idle check over many apps costs a lookup, not a time-zone calculation.
 */
export function keepAwakeState(schedule: KeepAwakeSchedule, now: number): KeepAwakeState {
  let c = cache.get(schedule);
  if (!c || now < c.computedAt || now >= c.validUntil) {
    const spans = spansBetween(schedule, now, now + HORIZON_MS);
    let validUntil = now + HORIZON_MS / 2;
    for (const s of spans) for (const edge of [s.start - schedule.leadMs, s.start, s.end]) if (edge > now && edge < validUntil) validUntil = edge;
    c = { validUntil, computedAt: now, spans };
    cache.set(schedule, c);
  }
  const current = c.spans.find((s) => s.start - schedule.leadMs <= now && now < s.end) ?? null;
  const next = c.spans.find((s) => s.start > now) ?? null;
  return { active: current !== null && current.start <= now, holding: current !== null, current, next };
}

/** What /api/apps (and the dashboard) show of an app's schedule. */
export interface KeepAwakeView {
  window: string;
  timezone: string;
  leadMs: number;
  /** Inside a window now. */
  active: boolean;
  /** Inside a window or its lead time: never put to sleep now. */
  holding: boolean;
  /** The window holding the app now (ISO times), else null. */
  current: { start: string; end: string } | null;
  /** The next window to start (ISO times), else null. */
  next: { start: string; end: string } | null;
}

export function keepAwakeView(schedule: KeepAwakeSchedule | undefined, now: number): KeepAwakeView | null {
  if (!schedule) return null;
  const s = keepAwakeState(schedule, now);
  const iso = (span: Span | null) => (span ? { start: new Date(span.start).toISOString(), end: new Date(span.end).toISOString() } : null);
  return { window: schedule.spec, timezone: schedule.timezone, leadMs: schedule.leadMs, active: s.active, holding: s.holding, current: iso(s.current), next: iso(s.next) };
}
