/**
 * Authentication of the admin app: one onRequest hook, registered before any route, covers every
 * route (including routes added later and the 404 handler); only PUBLIC_ROUTES are open.
 *
 * Credentials: `Authorization: Bearer <token>` (operator, read-only, or the metrics token on
 * /metrics), or the `sa_session` cookie that POST /login sets. A route's role comes from its
 * config (`{ config: { role: 'read' | 'operate' } }`), by default `read` for GET/HEAD and
 * `operate` for anything else. A cookie-authenticated request that changes state must carry an
 * Origin (or Referer) whose host is the request's Host (the browser's CSRF defence, on top of
 * SameSite=Strict).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdminToken, AdminTokens } from '../config.js';
import { ActivatorError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { ADMIN_RETRY_AFTER_SECONDS, sendProblem, toProblem } from './error-page.js';
import type { SessionRole, Store } from '../store/store.js';

export type AdminRole = SessionRole;
/** Who a request authenticated as; `metrics` is only good for /metrics. */
export type AuthenticatedAs = AdminRole | 'metrics';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The role a route needs (default: read for GET/HEAD, operate otherwise). */
    role?: AdminRole;
    /** Served without credentials; GET/HEAD routes only (the dashboard's page and its code). */
    public?: boolean;
  }
  interface FastifyInstance {
    /** Every route registered after installAdminAuth (method and pattern), for tests and audits. */
    adminRoutes: Array<{ method: string; url: string; role: AdminRole | 'public' }>;
  }
  interface FastifyRequest {
    /** Set by the auth hook on every authenticated admin request. */
    adminAuth?: { role: AuthenticatedAs; via: 'bearer' | 'session' } | undefined;
  }
}

export const SESSION_COOKIE = 'sa_session';
export const AUTH_REALM = 'swarm-activator';

/**
 * Routes that need no credentials, by route pattern (so no URL spelling reaches around it).
 * /metrics joins them only while no metrics token is configured.
 */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/login', '/logout']);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const LOGIN_BODY_LIMIT = 4096;

export interface AdminAuthOptions {
  tokens: AdminTokens;
  /** Where sessions live: the activator's Store (shared through Redis by several replicas). */
  store: Pick<Store, 'putSession' | 'getSession' | 'deleteSession'>;
  sessionTtlMs: number;
  now?: () => number;
}

interface TokenDigest {
  role: AuthenticatedAs;
  digest: Buffer;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The session's key in the store: a digest, so the store never holds a usable cookie value. */
function sessionKey(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('base64url');
}

function problem(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  if (ERROR_CODES[code].status === 401) reply.header('www-authenticate', `Bearer realm="${AUTH_REALM}"`);
  return sendProblem(reply, toProblem(new ActivatorError(code, message), ADMIN_RETRY_AFTER_SECONDS), false);
}

/** The host part of Origin, or of Referer when there is no Origin; undefined when neither is usable. */
function requestOriginHost(request: FastifyRequest): string | undefined {
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin || origin === 'null') return undefined;
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}

function sameOrigin(request: FastifyRequest): boolean {
  const host = request.headers.host?.toLowerCase();
  const origin = requestOriginHost(request);
  return host !== undefined && origin !== undefined && origin === host;
}

function cameOverHttps(request: FastifyRequest): boolean {
  const proto = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https' || request.protocol === 'https';
}

/**
 * Installs cookie parsing, the auth hook and the login/logout/session routes on the admin app.
 * Call it before registering any other route.
 */
export async function installAdminAuth(app: FastifyInstance, options: AdminAuthOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const { tokens, store } = options;
  const digests: TokenDigest[] = [];
  const add = (role: AuthenticatedAs, token: AdminToken | undefined) => {
    if (token) digests.push({ role, digest: sha256(token.reveal()) });
  };
  add('operate', tokens.operate);
  add('read', tokens.read);
  add('metrics', tokens.metrics);
  const publicRoutes = new Set(PUBLIC_ROUTES);
  if (!tokens.metrics) publicRoutes.add('/metrics');

  /** Constant time over every configured token: equal-length digests, no early exit. */
  const roleOfToken = (presented: string): AuthenticatedAs | undefined => {
    const digest = sha256(presented);
    let found: AuthenticatedAs | undefined;
    for (const d of digests) if (timingSafeEqual(d.digest, digest) && found === undefined) found = d.role;
    return found;
  };

  const routes: FastifyInstance['adminRoutes'] = [];
  app.decorate('adminRoutes', routes);
  app.addHook('onRoute', (route) => {
    // A GET route may declare itself public (the dashboard's page and code: they carry no data).
    if (route.config?.public === true && [route.method].flat().every((m) => SAFE_METHODS.has(m))) publicRoutes.add(route.url);
    for (const method of [route.method].flat()) {
      const role = publicRoutes.has(route.url) ? 'public' : (route.config?.role ?? (SAFE_METHODS.has(method) ? 'read' : 'operate'));
      routes.push({ method, url: route.url, role });
    }
  });

  await app.register(fastifyCookie);
  // Plain HTML forms post urlencoded; URLSearchParams is the platform's own parser.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: LOGIN_BODY_LIMIT }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== undefined && publicRoutes.has(route)) return;

    let as: { role: AuthenticatedAs; via: 'bearer' | 'session' } | undefined;
    const header = request.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
      const role = m ? roleOfToken(m[1] as string) : undefined;
      if (!role) return problem(reply, 'SA_UNAUTHORIZED', m ? 'the bearer token is not valid' : 'the Authorization header must be "Bearer <token>"');
      as = { role, via: 'bearer' };
    } else {
      const id = request.cookies[SESSION_COOKIE];
      if (id) {
        let session: Awaited<ReturnType<typeof store.getSession>>;
        try {
          session = await store.getSession(sessionKey(id));
        } catch (err) {
          request.log.warn({ err }, 'admin session lookup failed');
          return problem(reply, 'SA_STORE_UNAVAILABLE', 'sessions cannot be checked right now (the store does not answer); retry, or use the Bearer token');
        }
        if (!session || session.expiresAt <= now()) return problem(reply, 'SA_UNAUTHORIZED', 'the session has expired or is unknown: log in again');
        as = { role: session.role, via: 'session' };
        if (!SAFE_METHODS.has(request.method) && !sameOrigin(request)) {
          return problem(reply, 'SA_FORBIDDEN', 'a cookie-authenticated request that changes state must carry an Origin (or Referer) of this host');
        }
      }
    }
    if (!as) return problem(reply, 'SA_UNAUTHORIZED', 'the admin API needs "Authorization: Bearer <token>" or a session (POST /login)');

    if (as.role === 'metrics' && route !== '/metrics') return problem(reply, 'SA_FORBIDDEN', 'the metrics token is only good for /metrics');
    const needed: AdminRole = request.routeOptions.config?.role ?? (SAFE_METHODS.has(request.method) ? 'read' : 'operate');
    if (needed === 'operate' && as.role !== 'operate' && route !== '/metrics') {
      return problem(
        reply,
        'SA_FORBIDDEN',
        tokens.operate ? 'this route changes state: it needs the operator token' : 'state-changing admin routes are off: no ACTIVATOR_ADMIN_TOKEN_FILE is configured',
      );
    }
    request.adminAuth = as;
  });

  app.post<{ Body: unknown }>('/login', { bodyLimit: LOGIN_BODY_LIMIT }, async (request, reply) => {
    // A browser that says where it posts from must post from here (no login from other sites).
    if ((request.headers.origin !== undefined || request.headers.referer !== undefined) && !sameOrigin(request)) {
      return problem(reply, 'SA_FORBIDDEN', 'login from another origin is refused');
    }
    const raw = (request.body as { token?: unknown } | undefined)?.token;
    const presented = typeof raw === 'string' ? raw.trim() : '';
    const role = presented ? roleOfToken(presented) : undefined;
    if (role !== 'operate' && role !== 'read') {
      request.log.warn({ ip: request.ip }, 'admin login refused');
      return problem(reply, 'SA_UNAUTHORIZED', presented ? 'the token is not valid' : 'send {"token": "..."} or token=...');
    }
    const id = randomBytes(32).toString('base64url');
    const expiresAt = now() + options.sessionTtlMs;
    try {
      await store.putSession(sessionKey(id), { role, expiresAt });
    } catch (err) {
      request.log.warn({ err }, 'admin session could not be stored');
      return problem(reply, 'SA_STORE_UNAVAILABLE', 'the session cannot be stored right now (the store does not answer); retry, or use the Bearer token');
    }
    reply.setCookie(SESSION_COOKIE, id, {
      httpOnly: true,
      sameSite: 'strict',
      path: '/',
      secure: cameOverHttps(request),
      maxAge: Math.floor(options.sessionTtlMs / 1000),
    });
    request.log.info({ role, ip: request.ip }, 'admin login');
    reply.header('cache-control', 'no-store');
    // A plain HTML form lands on the dashboard; a script gets JSON.
    if (request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return reply.code(303).header('location', '/').send();
    return { role, expiresAt: new Date(expiresAt).toISOString() };
  });

  app.post('/logout', async (request, reply) => {
    const id = request.cookies[SESSION_COOKIE];
    if (id) await store.deleteSession(sessionKey(id)).catch(() => undefined);
    reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: cameOverHttps(request) });
    return reply.header('cache-control', 'no-store').send({ ok: true });
  });

  app.get('/api/session', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    return { role: request.adminAuth?.role, via: request.adminAuth?.via };
  });
}
