/**
 * The one place errors become HTTP answers: the row of the error table (src/errors.ts), then JSON
 * or a small HTML page, the same for a fastify reply (proxy, admin) and a raw upgrade socket.
 * Callers log (problem-log.ts on the proxy path).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyError, FastifyReply } from 'fastify';
import { ActivatorError, ERROR_CODES, asActivatorError, type ErrorCode } from '../errors.js';

export interface HttpProblem {
  status: number;
  code: string;
  title: string;
  /** Safe for the client. */
  message: string;
  /** For the log line only (ActivatorError.detail, or an unexpected error's message). */
  detail: string | undefined;
  app: string | undefined;
  retryAfterSeconds: number | undefined;
}

/** A finished answer: status, headers, body. */
export interface RenderedAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Client errors fastify raised (bad JSON, a body over bodyLimit, a cut-off body, …), by their status; any other 4xx is a bad request. */
const FASTIFY_CLIENT_ERRORS: ReadonlyMap<number, ErrorCode> = new Map([
  [413, 'SA_BODY_TOO_LARGE'],
  [415, 'SA_UNSUPPORTED_MEDIA_TYPE'],
]);

/** Any error → its row of the table. Fastify's client errors keep their message; anything else is asActivatorError's. */
export function toProblem(err: unknown, retryAfterSeconds: number): HttpProblem {
  const fe = err as Partial<FastifyError> | undefined;
  if (!(err instanceof ActivatorError) && typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return problem(FASTIFY_CLIENT_ERRORS.get(fe.statusCode) ?? 'SA_BAD_REQUEST', fe.message ?? 'bad request', retryAfterSeconds);
  }
  // Anything unexpected becomes SA_INTERNAL (or SA_DOCKER_UNAVAILABLE): its message may carry
  // internals, so the client gets a generic one and the log the detail.
  const e = asActivatorError(err);
  const meta = ERROR_CODES[e.code];
  return {
    status: meta.status,
    code: e.code,
    title: meta.title,
    message: e.message,
    detail: e.detail,
    app: e.app,
    retryAfterSeconds: e.retryAfterSeconds ?? (meta.retryAfter ? retryAfterSeconds : undefined),
  };
}

function problem(code: ErrorCode, message: string, retryAfterSeconds: number): HttpProblem {
  const meta = ERROR_CODES[code];
  return { status: meta.status, code, title: meta.title, message, detail: undefined, app: undefined, retryAfterSeconds: meta.retryAfter ? retryAfterSeconds : undefined };
}

export function wantsHtml(headers: IncomingHttpHeaders): boolean {
  const accept = headers.accept ?? '';
  return accept.includes('text/html');
}

/** The answer for a problem: JSON, or a small HTML page for a browser (`html`). */
export function renderProblem(p: HttpProblem, html: boolean): RenderedAnswer {
  const headers: Record<string, string> = { 'x-activator-error': p.code, 'cache-control': 'no-store' };
  if (p.retryAfterSeconds !== undefined) headers['retry-after'] = String(p.retryAfterSeconds);
  if (html) {
    headers['content-type'] = 'text/html; charset=utf-8';
    return { status: p.status, headers, body: errorHtml(p) };
  }
  headers['content-type'] = 'application/json; charset=utf-8';
  return { status: p.status, headers, body: JSON.stringify({ error: p.code, status: p.status, message: p.message, ...(p.app ? { app: p.app } : {}) }) };
}

/** The admin app answers in JSON (an API), with this Retry-After where the table asks for one. */
export const ADMIN_RETRY_AFTER_SECONDS = 5;

export function sendProblem(reply: FastifyReply, p: HttpProblem, html: boolean): FastifyReply {
  const answer = renderProblem(p, html);
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function errorHtml(p: HttpProblem): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${p.status} ${escapeHtml(p.title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:.1rem .3rem}</style></head>
<body><h1>${p.status} ${escapeHtml(p.title)}</h1><p>${escapeHtml(p.message)}</p><p><small>swarm-activator · <code>${p.code}</code></small></p></body></html>`;
}
