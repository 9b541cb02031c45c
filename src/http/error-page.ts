/** The one place errors become HTTP answers: status, and JSON or a small HTML page (callers log). */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ActivatorError, ERROR_CODES, type ErrorCode } from '../errors.js';

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

/** Fastify's own client errors keep their status; everything else is an internal error. */
export function toProblem(err: unknown, retryAfterSeconds: number): HttpProblem {
  if (err instanceof ActivatorError) {
    const meta = ERROR_CODES[err.code];
    return {
      status: meta.status,
      code: err.code,
      title: meta.title,
      message: err.message,
      detail: err.detail,
      app: err.app,
      retryAfterSeconds: err.retryAfterSeconds ?? (meta.retryAfter ? retryAfterSeconds : undefined),
    };
  }
  const fe = err as FastifyError;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return problem('SA_BODY_TOO_LARGE', fe.message, retryAfterSeconds);
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: fe.code ?? 'SA_BAD_REQUEST', title: 'Bad request', message: fe.message, detail: undefined, app: undefined, retryAfterSeconds: undefined };
  }
  // Anything unexpected: its message may carry internals, so the client gets a generic one.
  return problem('SA_INTERNAL', 'internal error (logged by the activator)', retryAfterSeconds, fe?.message ?? String(err));
}

function problem(code: ErrorCode, message: string, retryAfterSeconds: number, detail?: string): HttpProblem {
  const meta = ERROR_CODES[code];
  return { status: meta.status, code, title: meta.title, message, detail, app: undefined, retryAfterSeconds: meta.retryAfter ? retryAfterSeconds : undefined };
}

export function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('text/html');
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, p: HttpProblem): FastifyReply {
  reply.code(p.status).header('x-activator-error', p.code).header('cache-control', 'no-store');
  if (p.retryAfterSeconds !== undefined) reply.header('retry-after', String(p.retryAfterSeconds));
  if (wantsHtml(request)) {
    return reply.type('text/html; charset=utf-8').send(errorHtml(p));
  }
  return reply.type('application/json; charset=utf-8').send({ error: p.code, status: p.status, message: p.message, ...(p.app ? { app: p.app } : {}) });
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
