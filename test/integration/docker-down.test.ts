/**
 * Docker API unreachable: the activator (in-process, the same createActivator main.ts uses)
 * talks to the real engine through a TCP forwarder that the test can cut, like a manager going
 * away. Known apps get 503 + Retry-After, nothing crashes, and once Docker is back the next
 * request wakes the app again (no stuck state).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import pino from 'pino';
import { createActivator } from '../../src/activator.js';
import { loadConfig } from '../../src/config.js';
import { adminTokenEnv } from '../helpers/admin-tokens.js';
import { send } from '../helpers/http.js';

// The host cannot (and must not try to) reach overlay task addresses: an app whose task stays
// `starting` and that waits for Swarm's health (ready=healthy) is never probed, so an in-process
// activator never sends traffic to a task IP.
const NO_PROBE_IMAGE = 'sa/never-healthy:dev';
import { DOCKER_HOST, createApp, recordServiceEvents, runId, serviceState, waitFor } from '../helpers/swarm.js';

class DockerForwarder {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async open(port = 0): Promise<void> {
    const socketPath = new URL(DOCKER_HOST).pathname;
    this.server = createServer((client) => {
      const upstream = createConnection(socketPath);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

t.test('Docker API unreachable: 503 with Retry-After, a log line, no crash, no stuck state', async (t) => {
  const run = runId('dd');
  const forwarder = new DockerForwarder();
  await forwarder.open();
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const config = loadConfig({
    ...adminTokenEnv(),
    ACTIVATOR_DOCKER_HOST: `tcp://127.0.0.1:${forwarder.port}`,
    ACTIVATOR_HOST: '127.0.0.1',
    ACTIVATOR_PORT: '0',
    ACTIVATOR_ADMIN_PORT: '0',
    ACTIVATOR_SELECTOR: `sa.run=${run}`,
    ACTIVATOR_RETRY_AFTER: '7',
    ACTIVATOR_IDLE_CHECK_INTERVAL: '1h',
  });
  const activator = await createActivator(config, log, { defaultMetrics: false });
  const app = await createApp({ name: `${run}-app`, run, image: NO_PROBE_IMAGE, labels: { 'swarm-activator.wake-timeout': '2s', 'swarm-activator.ready': 'healthy' } });
  t.teardown(async () => {
    await activator.close();
    await forwarder.cut();
    await app.remove();
  });
  await activator.listen();
  const addr = activator.proxyApp.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  await waitFor('discovery', async () => activator.registry.byHost(app.host) !== undefined, 10_000, 20);

  await forwarder.cut();
  const res = await send(`${url}/`, { headers: { host: app.host } });
  t.equal(res.status, 503);
  t.equal(res.header('retry-after'), '7');
  t.equal(res.header('x-activator-error'), 'SA_DOCKER_UNAVAILABLE');
  t.match(res.json<{ message: string }>().message, /Docker API/);
  t.ok(lines.some((l) => l.code === 'SA_DOCKER_UNAVAILABLE' && l.level === 50), 'one error line says so');

  const unknown = await send(`${url}/`, { headers: { host: 'nobody.example.com' } });
  t.equal(unknown.status, 404, 'unknown hosts still answer 404 from the in-memory map');

  // Docker comes back (same address): the next request wakes the app — nothing was left stuck.
  await forwarder.open(forwarder.port);
  // (The app never gets healthy, so this wake ends in 504: proof that it ran, past Docker.)
  const events = await recordServiceEvents(app.name);
  const again = await send(`${url}/`, { headers: { host: app.host }, timeoutMs: 15_000 });
  t.equal(again.header('x-activator-error'), 'SA_WAKE_TIMEOUT', 'the wake ran once Docker answered again');
  await waitFor('the scale-back event', async () => events.updates.some((u) => u.replicasNew === 0), 5000, 20);
  events.stop();
  t.equal(events.scaleUps(), 1, 'one scale-up, counted from Docker events');
  t.equal((await serviceState(app.name)).replicas, 0, 'and back to 0 after the timeout');
});
