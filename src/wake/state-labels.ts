import { LABELS } from '../labels.js';

/** The `state.since` / `state.reason` labels a scale writes with its replicas (reason cut to 200 characters). */
export function stateLabels(reason: string, at = new Date()): Record<string, string> {
  return { [LABELS.stateSince]: at.toISOString(), [LABELS.stateReason]: reason.slice(0, 200) };
}
