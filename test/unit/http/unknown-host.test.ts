/**
 * Unknown hosts (scanners, bots, stale DNS): a 404 problem answer from the request hook, counted
 * in activator_unknown_host_requests_total, with no Docker call; a flood of them is not a flood of
 * info lines (one per host per minute, the rest at debug).
 */
import { Writable } from 'node:stream';
import t from 'tap';
import pino from 'pino';
import { LABELS } from '../../../src/labels.js';
import type { ServiceInfo, SwarmClient } from '../../../src/swarm/swarm.js';
import { proxyStack } from '../../helpers/wake-stack.js';

async function setup(t: { teardown(fn: () => unknown): void }, level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const log = pino({ level }, sink);
  const service: ServiceInfo = { id: 'svc-web', name: 'web', version: 1, labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.test', [LABELS.port]: '80' }, replicas: 0, updatedAt: '', templateKey: 't1' };
  let dockerCalls = 0;
  const swarm: SwarmClient = {
    ping: async () => void dockerCalls++,
    listServices: async () => (dockerCalls++, [service]),
    inspectService: async () => (dockerCalls++, service),
    scaleService: async () => (dockerCalls++, { changed: false, version: 1, previousReplicas: 0 }),
    updateServiceLabels: async () => (dockerCalls++, service),
    listTasks: async () => (dockerCalls++, []),
    watchServices: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    containerNetworkBytes: async () => null,
  };
  const { app, metrics } = await proxyStack(t, swarm, { log, probeIntervalMs: 20 });
  const callsAtStart = dockerCalls;
  return { app, lines, metrics, dockerCallsSince: () => dockerCalls - callsAtStart };
}

t.test('404 SA_UNKNOWN_HOST as JSON or a page, counted, no Docker call, one info line', async (t) => {
  const { app, lines, metrics, dockerCallsSince } = await setup(t, 'info');
  const json = await app.inject({ url: '/x', headers: { host: 'nobody.example.com' } });
  t.equal(json.statusCode, 404);
  t.equal(json.headers['x-activator-error'], 'SA_UNKNOWN_HOST');
  t.match(json.json(), { error: 'SA_UNKNOWN_HOST', status: 404, message: /nobody\.example\.com/ });
  const html = await app.inject({ url: '/', headers: { host: 'nobody.example.com', accept: 'text/html' } });
  t.equal(html.statusCode, 404);
  t.match(html.body, /<h1>404 Unknown host<\/h1>/);
  for (let i = 0; i < 50; i++) await app.inject({ url: `/scan/${i}`, headers: { host: 'nobody.example.com' } });
  t.equal((await metrics.unknownHosts.get()).values[0]?.value, 52, 'every one counted');
  t.equal(dockerCallsSince(), 0, 'no Docker call');
  t.equal(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST').length, 1, 'one info line for 52 requests');
});

t.test('at debug, every unknown-host request is logged with its host and URL', async (t) => {
  const { app, lines } = await setup(t, 'debug');
  await app.inject({ url: '/wp-login.php', headers: { host: 'scanner.example.com' } });
  await app.inject({ url: '/.env', headers: { host: 'scanner.example.com' } });
  t.match(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST'), [
    { level: 30, host: 'scanner.example.com', url: '/wp-login.php', status: 404 },
    { level: 20, host: 'scanner.example.com', url: '/.env', status: 404 },
  ]);
});

t.test('unknown-Host upgrade (WebSocket) requests share the limiter: one info line for many', async (t) => {
  const { app, lines } = await setup(t, 'info');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const { connect } = await import('node:net');
  for (let i = 0; i < 30; i++) {
    await new Promise<void>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.write('GET /ws HTTP/1.1\r\nHost: scanner.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
      sock.on('data', () => sock.destroy());
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
  }
  // A plain request for the same Host right after: the same window, so no second line either.
  await app.inject({ method: 'GET', url: '/', headers: { host: 'scanner.example' } });
  t.equal(lines.filter((l) => l.code === 'SA_UNKNOWN_HOST').length, 1, 'one info line for 31 requests (30 upgrades and a plain one)');
});
