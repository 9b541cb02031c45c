// The Traefik source against a real HTTP server on port 0 that serves Traefik's documented
// exposition format: the parsing and edge cases, in unit-test time. The real Traefik's metrics are
// read end to end in test/e2e/traefik.test.ts.
import { createServer, type Server } from 'node:http';
import t from 'tap';
import { TraefikMetricsSource, traefikSeriesKeys } from '../../../src/idle/sources/traefik-metrics.js';
import { FakeRegistry, entry, silentLog } from '../../helpers/idle-fakes.js';

interface Fixture {
  source: TraefikMetricsSource;
  /** service label → { labelSet → value } */
  series: Map<string, Map<string, number>>;
  set(service: string, value: number, labelSet?: string): void;
  drop(service: string): void;
  status: number;
  activity: Array<[string, number]>;
}

async function fixture(t: { teardown(fn: () => unknown): void }, registry: FakeRegistry): Promise<Fixture> {
  const fx = {
    series: new Map<string, Map<string, number>>(),
    status: 200,
    activity: [] as Array<[string, number]>,
    set(service: string, value: number, labelSet = 'code="200",method="GET",protocol="http"') {
      const m = fx.series.get(service) ?? new Map<string, number>();
      m.set(labelSet, value);
      fx.series.set(service, m);
    },
    drop(service: string) {
      fx.series.delete(service);
    },
  } as Omit<Fixture, 'source'> & { source?: TraefikMetricsSource };
  const server: Server = createServer((_req, res) => {
    if (fx.status !== 200) return res.writeHead(fx.status).end('nope');
    const lines = [
      '# HELP traefik_service_requests_total How many HTTP requests processed on a service, partitioned by status code, protocol, and method.',
      '# TYPE traefik_service_requests_total counter',
    ];
    for (const [service, sets] of fx.series) for (const [labels, v] of sets) lines.push(`traefik_service_requests_total{${labels},service="${service}"} ${v}`);
    lines.push('# TYPE traefik_service_request_duration_seconds histogram', 'traefik_service_request_duration_seconds_bucket{code="200",le="0.1",service="other@swarm"} 1');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let clock = 1000;
  fx.source = new TraefikMetricsSource({ url: `http://127.0.0.1:${port}/metrics`, intervalMs: 1000, registry, log: silentLog, now: () => ++clock });
  return fx as Fixture;
}

t.test('series keys: provider suffix and Traefik name normalisation', async (t) => {
  t.same(traefikSeriesKeys('whoami'), ['whoami@swarm']);
  t.same(traefikSeriesKeys('my_stack_web.v2'), ['my_stack_web.v2@swarm', 'my-stack-web-v2@swarm']);
  t.same(traefikSeriesKeys('api@file'), ['api@file'], 'an explicit provider is kept');
});

t.test('first poll is a baseline; a rise is activity; equal is not', async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('web', { traefikServices: ['web'] })]));
  fx.set('web@swarm', 10);
  t.same(await fx.source.poll(), [], 'baseline only, however high the counter');
  t.same(await fx.source.poll(), [], 'unchanged');
  fx.set('web@swarm', 11);
  t.same(await fx.source.poll(), ['web']);
  t.same(await fx.source.poll(), [], 'no new requests ended');
});

t.test('the counter is summed over its label sets (code, method, protocol)', async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('web')]));
  fx.set('web@swarm', 5, 'code="200",method="GET",protocol="http"');
  fx.set('web@swarm', 2, 'code="404",method="GET",protocol="http"');
  await fx.source.poll();
  fx.set('web@swarm', 3, 'code="404",method="GET",protocol="http"');
  t.same(await fx.source.poll(), ['web'], 'one label set moved');
  fx.set('web@swarm', 1, 'code="101",method="GET",protocol="websocket"');
  t.same(await fx.source.poll(), ['web'], 'a new label set appeared (a WebSocket that ended)');
});

t.test('a missing series and a lower value are resets, not activity', async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('web')]));
  fx.set('web@swarm', 40);
  await fx.source.poll();
  fx.drop('web@swarm');
  t.same(await fx.source.poll(), [], 'gone (no task): a reset');
  t.same(await fx.source.poll(), [], 'still gone');
  fx.set('web@swarm', 0);
  t.same(await fx.source.poll(), [], 'back at 0: nothing ended yet');
  fx.set('web@swarm', 2);
  t.same(await fx.source.poll(), ['web'], 'then up from 0');
  fx.set('web@swarm', 1);
  t.same(await fx.source.poll(), [], 'lower: a reset (e.g. Traefik restarted), not activity');
  fx.set('web@swarm', 4);
  t.same(await fx.source.poll(), ['web'], 'up from the new baseline');
});

t.test('a series back after a reset with requests already counted is activity', async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('web')]));
  fx.set('web@swarm', 40);
  await fx.source.poll();
  fx.drop('web@swarm');
  await fx.source.poll();
  fx.set('web@swarm', 3);
  t.same(await fx.source.poll(), ['web'], 'restarted at 0 and 3 requests ended since the last poll');
});

t.test("Swarm names are normalised; other apps' series do not count", async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('shop_web', { traefikServices: ['shop_web'] }), entry('blog', { traefikServices: ['blog-svc'] })]));
  fx.set('shop-web@swarm', 1);
  fx.set('blog-svc@swarm', 1);
  fx.set('blog@swarm', 1);
  await fx.source.poll();
  fx.set('shop-web@swarm', 2);
  fx.set('blog@swarm', 9); // not the blog app's Traefik service
  t.same(await fx.source.poll(), ['shop_web']);
  fx.set('blog-svc@swarm', 2);
  t.same(await fx.source.poll(), ['blog']);
});

t.test('a failed scrape is neither activity nor a reset', async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('web')]));
  fx.set('web@swarm', 5);
  await fx.source.poll();
  fx.status = 500;
  t.same(await fx.source.poll(), []);
  fx.status = 200;
  t.same(await fx.source.poll(), [], 'same value as before the failure: nothing new');
  fx.status = 503;
  await fx.source.poll();
  fx.status = 200;
  fx.set('web@swarm', 6);
  t.same(await fx.source.poll(), ['web'], 'compared with the last good scrape');
});

t.test('start() reports activity through the callback with the poll time', async (t) => {
  const fx = await fixture(t, new FakeRegistry([entry('web')]));
  fx.set('web@swarm', 1);
  const seen: Array<[string, number]> = [];
  fx.source.start((app, at) => seen.push([app, at]));
  t.teardown(() => fx.source.stop());
  await fx.source.poll(); // the loop's first poll may still be in flight: this one settles the baseline too
  fx.set('web@swarm', 2);
  await fx.source.poll();
  t.equal(seen.length, 1);
  t.equal(seen[0]?.[0], 'web');
  t.type(seen[0]?.[1], 'number');
});

t.test('several Traefik replicas behind one DNS name: each followed on its own', async (t) => {
  // Two "replicas" on 127.0.0.1 and 127.0.0.2, same port, with different counters.
  const counters = new Map<string, number>([['127.0.0.1', 10], ['127.0.0.2', 3]]);
  const servers = ['127.0.0.1', '127.0.0.2'].map((ip) =>
    createServer((_req, res) => res.end(`traefik_service_requests_total{code="200",method="GET",protocol="http",service="web@swarm"} ${counters.get(ip)}\n`)),
  );
  await new Promise<void>((r) => servers[0]!.listen(0, '127.0.0.1', r));
  const address = servers[0]!.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((r, j) => servers[1]!.once('error', j).listen(port, '127.0.0.2', r));
  t.teardown(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));
  let addresses = ['127.0.0.1', '127.0.0.2'];
  const lookups: string[] = [];
  const source = new TraefikMetricsSource({
    url: `http://tasks.traefik:${port}/metrics`,
    intervalMs: 1000,
    registry: new FakeRegistry([entry('web')]),
    log: silentLog,
    resolve: async (host) => {
      lookups.push(host);
      return addresses;
    },
  });
  t.same(await source.poll(), [], 'baseline for both');
  t.same(await source.poll(), [], 'two replicas with different counters are not read as jumps');
  t.same(lookups, ['tasks.traefik', 'tasks.traefik'], 'resolved on every poll');
  counters.set('127.0.0.2', 4);
  t.same(await source.poll(), ['web'], 'a request ended on the second replica');
  addresses = ['127.0.0.1'];
  t.same(await source.poll(), [], 'a replica gone from DNS is neither activity nor a reset of the other');
  addresses = ['127.0.0.1', '127.0.0.2'];
  counters.set('127.0.0.2', 9);
  t.same(await source.poll(), [], 'a replica (back) in DNS starts with a baseline');
  counters.set('127.0.0.1', 11);
  t.same(await source.poll(), ['web']);
});
