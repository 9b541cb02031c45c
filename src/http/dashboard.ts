/**
 * The ops dashboard on the admin app: GET / (one HTML page, one ES module, one stylesheet from
 * src/http/dashboard/, no build step) and GET /api/events (the live feed, server-sent events).
 * The page holds no data: it logs in with 12a's POST /login, then everything comes through the
 * authenticated feed and the ops API.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './admin.js';
import { LiveFeed, TooManyStreamsError } from './live-feed.js';

const ASSETS_DIR = new URL('./dashboard/', import.meta.url);

const ASSETS = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/dashboard.js', file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  { route: '/dashboard.css', file: 'dashboard.css', type: 'text/css; charset=utf-8' },
] as const;

/** Everything the page loads comes from here; app names and reasons are text, never markup. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

export const DEFAULT_DASHBOARD_MAX_CLIENTS = 32;

export function registerDashboard(app: FastifyInstance, deps: AdminDeps): void {
  // Read once at start-up: a missing file is a broken build, and it says so at once.
  const assets = ASSETS.map((a) => ({ ...a, body: readFileSync(new URL(a.file, ASSETS_DIR)) }));
  for (const asset of assets) {
    // The page and its code are public (they carry no data); the login form must load without a token.
    app.get(asset.route, { config: { public: true } }, async (_request, reply) => reply.headers(SECURITY_HEADERS).type(asset.type).send(asset.body));
  }

  const feed = new LiveFeed({ registry: deps.registry, history: deps.history, activity: deps.reaper?.activity }, deps, deps.dashboardMaxClients ?? DEFAULT_DASHBOARD_MAX_CLIENTS);
  // preClose: before the server waits for its connections, or open streams would hold the close up.
  app.addHook('preClose', async () => feed.close());

  // No HEAD twin: a HEAD would hold a stream slot open with nothing to read.
  app.get('/api/events', { exposeHeadRoute: false }, async (request, reply) => {
    try {
      reply.hijack(); // the stream is ours from here; fastify sends nothing more
      feed.open(reply.raw);
    } catch (err) {
      if (!(err instanceof TooManyStreamsError)) throw err;
      request.log.warn({ streams: feed.size }, `live stream refused: ${err.message}`);
      reply.raw.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '10', 'cache-control': 'no-store' });
      reply.raw.end(JSON.stringify({ error: 'SA_TOO_MANY_STREAMS', status: 503, message: err.message }));
    }
  });
}
