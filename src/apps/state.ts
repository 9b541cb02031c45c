/**
 * The state labels the activator (and the CLI, and deploy) write with every scale, in the same
 * spec update: since when, what kind of change (read back by the reaper and the savings), and a
 * reason for people. The kind is its own label so nothing parses the reason text.
 */
import { LABELS } from '../labels.js';
import type { AppState, StateKind } from './model.js';

export const STATE_KINDS: readonly StateKind[] = ['woken', 'slept', 'deployed', 'manual'];
/** The reason is for people (CLI, dashboard): bounded, since a wake's reason may quote a request. */
const MAX_DETAIL_CHARS = 200;

export function stateLabels(kind: StateKind, detail: string, at = new Date()): Record<string, string> {
  return { [LABELS.stateSince]: at.toISOString(), [LABELS.stateKind]: kind, [LABELS.stateReason]: detail.slice(0, MAX_DETAIL_CHARS) };
}

/** The state labels read back; undefined without a readable state.since. */
export function readState(labels: Record<string, string>): AppState | undefined {
  const since = Date.parse(labels[LABELS.stateSince] ?? '');
  if (!Number.isFinite(since)) return undefined;
  const detail = labels[LABELS.stateReason] ?? '';
  const kindLabel = labels[LABELS.stateKind]?.trim();
  const kind = STATE_KINDS.find((k) => k === kindLabel) ?? kindOfOldReason(detail);
  return { since, kind, detail };
}

/** Labels written before state.kind existed: their reasons began with the kind's word. */
function kindOfOldReason(reason: string): StateKind {
  if (reason.startsWith('woken')) return 'woken';
  if (reason.startsWith('deployed')) return 'deployed';
  if (reason.startsWith('manual')) return 'manual';
  return 'slept';
}
