/**
 * The chain's last step for HTTP: a routed request, its body buffered, goes to the app's task
 * (upstream.ts: undici), and is sent again where that is safe (attempts.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WakeCoordinator } from '../wake/coordinator.js';
import type { Endpoint } from '../wake/readiness.js';
import { lostTaskCheck, sendWithRetries } from './attempts.js';
import type { Routed } from './chain.js';
import { headersForApp, type TrustedPeers } from './forwarding.js';
import type { RequestBodies } from './request-body.js';
import type { Upstream } from './upstream.js';

/** Only on responses that waited for a wake; Server-Timing shows the wait in the browser's dev tools. */
function coldStartHeaders(wakeMs: number): string[] {
  return ['X-Activator-Cold-Start', 'true', 'Server-Timing', `wake;dur=${Math.round(wakeMs)}`];
}

export interface HttpForwarderDeps {
  coordinator: WakeCoordinator;
  upstream: Upstream;
  trusted: TrustedPeers;
  bodies: RequestBodies;
}

/**
 * Resolves once the app's response head is on its way to the client (the rest streams from
 * undici's handler), or the client left; throws a domain error when the app did not answer.
 */
export async function forwardHttp(d: HttpForwarderDeps, request: FastifyRequest, reply: FastifyReply, routed: Routed, endpoint: Endpoint): Promise<void> {
  const entry = routed.entry;
  const service = entry.policy.service;
  const headers = headersForApp(request.raw, d.trusted);
  const body = await d.bodies.of(request, reply, service);
  const onLateError = (err: Error) => request.log.warn({ err, app: service, url: request.url }, `app ${service} broke off its response`);
  await sendWithRetries({
    coordinator: d.coordinator,
    log: request.log,
    entry,
    method: request.method,
    url: request.url,
    first: { endpoint, wake: routed.wake },
    didNotAnswer: 'did not answer',
    clientGone: () => reply.raw.destroyed,
    attempt: (target) =>
      d.upstream.forward(request.raw, reply.raw, target.endpoint, {
        headers,
        body,
        extraResponseHeaders: target.wake.cold ? coldStartHeaders(target.wake.ms) : undefined,
        onLateError,
        giveUp: lostTaskCheck(d.coordinator, entry, target.endpoint),
      }),
  });
  // The head is written and the body streams from undici (or the client left): fastify sends nothing.
  reply.hijack();
}
