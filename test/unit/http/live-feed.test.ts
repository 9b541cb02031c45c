/**
 * The dashboard's live feed over real HTTP: a snapshot on connect, then events driven by domain
 * events (a wake, a registry change, activity, coalesced), the bound on streams, and clean-up.
 * The swarm is in memory (MemorySwarm); the real swarm is covered by test/e2e/dashboard.test.ts.
 */
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import t from 'tap';
import pino from 'pino';
import { LiveFeed, TooManyStreamsError } from '../../../src/http/live-feed.js';
import { ActivityLog } from '../../../src/idle/activity-log.js';
import { OwnTraffic } from '../../../src/idle/traffic.js';
import { LABELS } from '../../../src/labels.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { WakeHistory } from '../../../src/wake/wake-history.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';
import { wakeStack } from '../../helpers/wake-stack.js';

const log = pino({ level: 'silent' });

/** The parts of an app view these tests read. */
interface View {
  service: string;
  environment: string | null;
  display: { state: string; reason: string | null };
  wakes: Array<{ ms: number }>;
  usualWakeMs: number | null;
  lastActivity: number | null;
  lastActivitySource: string | null;
}
interface Data {
  apps: View[];
  service: string;
  display: View['display'];
  wakes: View['wakes'];
  usualWakeMs: View['usualWakeMs'];
  lastActivity: View['lastActivity'];
  lastActivitySource: View['lastActivitySource'];
}
interface Event {
  event: string;
  data: Data;
  at: number;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

/** A minimal SSE reader: every event with its arrival time. */
function subscribe(port: number): Promise<{ res: IncomingMessage; events: Event[]; next(name: string, pred?: (d: Data) => boolean, timeoutMs?: number): Promise<Event>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/events' }, (res) => {
      const events: Event[] = [];
      const waiters: Array<() => void> = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as Data, at: Date.now() });
          for (const w of waiters.splice(0)) w();
        }
      });
      const next = (name: string, pred: (d: Data) => boolean = () => true, timeoutMs = 3000) =>
        new Promise<Event>((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`no ${name} event in ${timeoutMs} ms`)), timeoutMs);
          const check = () => {
            const found = events.find((e) => e.event === name && pred(e.data));
            if (found) {
              clearTimeout(timer);
              events.splice(events.indexOf(found), 1);
              ok(found);
            } else waiters.push(check);
          };
          check();
        });
      resolve({ res, events, next, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

async function setup(t: { teardown(fn: () => unknown): void }, maxClients = 4) {
  const origin = createServer((_req, res) => res.end('ok'));
  const originPort = await listen(origin);
  const swarm = new MemorySwarm();
  swarm.add('web', { [LABELS.hosts]: 'web.test', [LABELS.port]: String(originPort), [LABELS.deployEnv]: 'pr-42' });
  swarm.add('api', { [LABELS.hosts]: 'api.test', [LABELS.port]: String(originPort) });
  swarm.behaviour.set('web', { port: originPort, startMs: 100 });
  const history = new WakeHistory();
  const { registry, coordinator, metrics } = await wakeStack(t, swarm, { wakeTimeoutMs: 3000, probeIntervalMs: 10, history });
  const activity = new ActivityLog(new MemoryStore(), log);
  const traffic = new OwnTraffic(metrics);
  const feed = new LiveFeed({ registry, history, activity }, { coordinator, traffic, history, reaper: { activity } }, maxClients);
  const server = createServer((req, res) => {
    try {
      feed.open(res);
    } catch (err) {
      res.writeHead(err instanceof TooManyStreamsError ? 503 : 500).end();
    }
  });
  const port = await listen(server);
  t.teardown(async () => {
    feed.close();
    server.closeAllConnections();
    server.close();
    origin.close();
  });
  return { swarm, registry, coordinator, activity, feed, port };
}

t.test('snapshot on connect, then a wake arrives as it happens: waking, then awake with its duration', async (t) => {
  const { registry, coordinator, port } = await setup(t);
  const s = await subscribe(port);
  t.equal(s.res.headers['content-type'], 'text/event-stream; charset=utf-8');
  const snap = await s.next('snapshot');
  t.same(snap.data.apps.map((a) => a.service).sort(), ['api', 'web']);
  t.equal(snap.data.apps.find((a) => a.service === 'web')?.environment, 'pr-42', 'grouped by the deploy env label');
  t.equal(snap.data.apps.find((a) => a.service === 'api')?.environment, null);

  const entry = registry.byService('web');
  if (!entry) throw new Error('not discovered');
  const woke = coordinator.ensureReady(entry, new AbortController().signal, 'request for web.test');
  const waking = await s.next('app', (d) => d.service === 'web' && d.display.state === 'waking');
  t.match(waking.data.display.reason, /woken: request for web\.test/);
  await woke;
  // The registry sees the scale (a service event; MemorySwarm has none, so a resync stands in).
  await registry.resync();
  const awake = await s.next('app', (d) => d.service === 'web' && d.display.state === 'awake', 2000);
  t.equal(awake.data.wakes.length, 1, 'the wake is in its history');
  const ms = awake.data.wakes[0]?.ms ?? 0;
  t.ok(ms >= 90, `with its duration (${ms} ms)`);
  t.equal(awake.data.usualWakeMs, ms);
  s.close();
});

t.test('activity is coalesced: a burst becomes at most one event per app per second', async (t) => {
  const { activity, port } = await setup(t);
  const s = await subscribe(port);
  await s.next('snapshot');
  const start = Date.now();
  for (let i = 0; i < 50; i++) {
    activity.record('api', start + i, 'own-traffic');
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 1300));
  const apiEvents = s.events.filter((e) => e.event === 'app' && e.data.service === 'api');
  t.ok(apiEvents.length >= 1 && apiEvents.length <= 2, `50 activity records in ~0.6 s → ${apiEvents.length} event(s)`);
  t.equal(apiEvents.at(-1)?.data.lastActivity, start + 49, 'the last one carries the latest activity');
  t.equal(apiEvents.at(-1)?.data.lastActivitySource, 'own-traffic', 'and which source saw it');
  s.close();
});

t.test('streams are bounded, freed when the client leaves, and all ended on close', async (t) => {
  const { feed, port } = await setup(t, 2);
  const a = await subscribe(port);
  const b = await subscribe(port);
  await a.next('snapshot');
  await b.next('snapshot');
  t.equal(feed.size, 2);
  const refused = await new Promise<number>((resolve) => get({ host: '127.0.0.1', port, path: '/events' }, (res) => resolve(res.statusCode ?? 0)));
  t.equal(refused, 503, 'a third stream is refused');
  a.close();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(feed.size, 1, 'a client that left is dropped');
  const c = await subscribe(port);
  await c.next('snapshot');
  const ended = new Promise((r) => b.res.once('end', r));
  feed.close();
  await ended;
  t.equal(feed.size, 0, 'close ends every stream');
  c.close();
});
