/**
 * Sending a routed request to the app, attempt by attempt, for both transports: what a failed
 * attempt means (nextMove), how a request whose task was lost is noticed (lostTaskCheck), and
 * the loop that takes the wake path again before another attempt (sendWithRetries).
 */
import type { BaseLogger } from 'pino';
import type { AppEntry } from '../discovery/app-registry.js';
import { ActivatorError, UpstreamError, asActivatorError } from '../errors.js';
import type { WakeCoordinator } from '../wake/coordinator.js';
import type { Endpoint } from '../wake/readiness.js';
import { isRetryableConnectError } from './forwarding.js';
import { ForwardError } from './upstream.js';

/** A request the app has not answered for 2–4 s has its task checked (node lost?), then every 2 s. */
export const LOST_TASK_CHECK_EVERY_MS = 2000;
/** Methods RFC 9110 calls idempotent: sent again when the task they went to was lost. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Attempts after the first one for a request whose task was lost. */
const LOST_TASK_RETRIES = 2;

/** The task a request went to is gone (node lost, task shut down): the request was aborted. */
export class TaskLostError extends Error {
  override readonly name = 'TaskLostError';
}

/** Asked about a request the app has not answered yet: a TaskLostError when its task is gone. */
export function lostTaskCheck(coordinator: WakeCoordinator, entry: AppEntry, endpoint: Endpoint): () => Promise<Error | undefined> {
  return async () => ((await coordinator.endpointLost(entry, endpoint)) ? new TaskLostError(`task ${endpoint.taskId} of ${entry.policy.service} is gone (node lost, or the task shut down)`) : undefined);
}

export type NextMove = { retry: true; taskLost: boolean } | { retry: false; error: ActivatorError };

/**
 * After a failed attempt (a ForwardError): send again only what the app cannot have run, i.e. a
 * request never written to it (the task went away before), or an idempotent one whose task was
 * lost. Anything else the app may have seen is never sent twice.
 */
export function nextMove(failure: unknown, attempt: number, method: string, service: string, endpoint: Endpoint, didNotAnswer: string): NextMove {
  const forward = failure instanceof ForwardError ? failure : undefined;
  const written = !forward || forward.written;
  const taskLost = forward?.error instanceof TaskLostError;
  if (taskLost && !IDEMPOTENT.has(method)) {
    return { retry: false, error: new UpstreamError(service, `its task was lost while a ${method} was in flight (node down, or the task shut down); not sent again, since the app may have run it`, { cause: failure }) };
  }
  if ((attempt === 0 && !written && isRetryableConnectError(failure)) || (taskLost && attempt < LOST_TASK_RETRIES)) return { retry: true, taskLost };
  if ((forward?.error as { code?: string } | undefined)?.code === 'UND_ERR_INVALID_ARG') {
    // undici refuses to send it (`OPTIONS *`, a second Host header, …): the client's request is at fault.
    return { retry: false, error: new ActivatorError('SA_BAD_REQUEST', 'request cannot be forwarded (e.g. a request target of *, or two Host headers)', service, { detail: (failure as Error).message }) };
  }
  // The task address and the socket error go to the log, never to the client.
  return { retry: false, error: new UpstreamError(service, didNotAnswer, { cause: failure, detail: `upstream ${endpoint.ip}:${endpoint.port} (task ${endpoint.taskId}): ${(failure as Error).message}` }) };
}

export interface AttemptTarget {
  endpoint: Endpoint;
  /** Held while the app woke (a cold start), and for how long: the cold-start headers. */
  wake: { cold: boolean; ms: number };
}

export interface SendOptions {
  coordinator: WakeCoordinator;
  log: Pick<BaseLogger, 'warn'>;
  entry: AppEntry;
  method: string;
  url: string;
  first: AttemptTarget;
  /** The client's message for an app that did not answer. */
  didNotAnswer: string;
  /** The client left: stop, nobody to answer. */
  clientGone: () => boolean;
  /** One attempt; rejects with a ForwardError (or a connect error) when the app did not answer. */
  attempt: (target: AttemptTarget) => Promise<void>;
}

/** Attempts until one gets the app's answer, or throws the domain error the client gets. */
export async function sendWithRetries(o: SendOptions): Promise<void> {
  const service = o.entry.policy.service;
  let target = o.first;
  for (let attempt = 0; ; attempt++) {
    try {
      return await o.attempt(target);
    } catch (failure) {
      if (o.clientGone()) return;
      const move = nextMove(failure, attempt, o.method, service, target.endpoint, o.didNotAnswer);
      if (!move.retry) throw move.error;
      if (move.taskLost) o.log.warn({ app: service, task: target.endpoint.taskId, method: o.method, url: o.url }, `task of ${service} lost with a request in flight; sending it to a new task`);
      target = await rewake(o.coordinator, o.entry, target);
    }
  }
}

/** Forgets the endpoint that failed and takes the wake path once more (it may wake the app again). */
async function rewake(coordinator: WakeCoordinator, entry: AppEntry, failed: AttemptTarget): Promise<AttemptTarget> {
  coordinator.invalidate(entry.policy.service, failed.endpoint);
  const startedAt = performance.now();
  try {
    const ready = await coordinator.ensureReadyDetail(entry, AbortSignal.timeout(entry.policy.wakeTimeoutMs + 1000));
    const wake = ready.waitedForWake ? { cold: true, ms: failed.wake.ms + performance.now() - startedAt } : failed.wake;
    return { endpoint: ready.endpoint, wake };
  } catch (err) {
    throw asActivatorError(err, entry.policy.service);
  }
}
