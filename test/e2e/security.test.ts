/**
 * The security matrix of docs/security.md on the real swarm, one test per row (the outages are in
 * security-docker-down.test.ts and security-redis-down.test.ts). The activator runs as a Swarm
 * service WITHOUT the Docker socket: it reaches the Engine API only through the HAProxy allow-list
 * (sa/docker-api-proxy:dev, as stack/activator.yml runs it). Each test asserts its outcome and
 * prints its figure (a `# ` comment line).
 */
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { Agent, request } from 'undici';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { startDockerApiProxy, type DockerApiProxy } from '../helpers/docker-api-proxy.js';
import { rawExchange, send } from '../helpers/http.js';
import { createApp, docker, runId, runningTasks, serviceLogs, serviceState, waitFor, type TestApp } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const run = runId('sec');
let proxy: DockerApiProxy;
let activator: RunningActivator;
/** An awake app (LOG_REQUESTS=1: its log shows every request head it received). */
let awake: TestApp;
const MB = 1024 * 1024;

t.before(async () => {
  proxy = await startDockerApiProxy(`${run}-dockerapi`, run);
  activator = await startActivator({
    name: `${run}-activator`,
    run,
    dockerSocket: false,
    env: {
      ACTIVATOR_DOCKER_HOST: proxy.dockerHost,
      ACTIVATOR_MAX_BODY: '64kb',
      ACTIVATOR_WAKE_TIMEOUT: '30s',
      ACTIVATOR_HEADERS_TIMEOUT: '4s',
      ACTIVATOR_REQUEST_TIMEOUT: '8s',
      // No periodic resync during the matrix: "0 Docker calls" then means none at all.
      ACTIVATOR_RESYNC_INTERVAL: '1h',
      ACTIVATOR_IDLE_TIMEOUT: '1h',
    },
  });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
  await awake?.remove();
  await proxy?.remove();
});

const rss = async () => (await activator.metric('process_resident_memory_bytes')) ?? NaN;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/** Request heads the awake app logged (sample-app LOG_REQUESTS=1). */
async function appSaw(marker: string): Promise<string[]> {
  return (await serviceLogs(awake.name, 5000)).split('\n').filter((l) => l.includes('request ') && l.includes(marker));
}

async function startAwakeApp(): Promise<void> {
  if (awake) return;
  awake = await createApp({ name: `${run}-awake`, run, replicas: 1, env: { LOG_REQUESTS: '1' } });
  await waitFor('awake app running', async () => (await runningTasks(awake.name)).length > 0, 30_000, 100);
  await activator.waitForApp(awake.name);
  await waitFor('awake app answering through the activator', async () => (await send(`${activator.url}/warm`, { headers: { host: awake.host } })).status === 200, 30_000, 200);
}

/** n requests with random Hosts, 32 at a time; statuses counted. */
async function randomHosts(n: number, tag: string): Promise<Map<number, number>> {
  const agent = new Agent({ connections: 32, pipelining: 1 });
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        const host = `${Math.random().toString(36).slice(2)}-${tag}${i}.random.example`;
        const res = await request(`${activator.url}/wp-login.php`, { headers: { host }, dispatcher: agent, headersTimeout: 10_000 });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    }),
  );
  await agent.close();
  return statuses;
}

t.test('10,000 random Host headers: 404 each, 0 Docker calls, bounded log lines, flat RSS', async (t) => {
  // A fresh process grows on its first traffic (JIT, lazily made pools): warm it up first, then
  // measure; a leak grows with the count, warm-up does not.
  const callsBefore = (await activator.metric('activator_docker_api_calls_total')) ?? 0;
  const linesBefore = (await activator.logLines()).filter((l) => l.code === 'SA_UNKNOWN_HOST').length;
  await randomHosts(2000, 'warm');
  await new Promise((r) => setTimeout(r, 1000)); // let the warm-up settle
  const rssBefore = await rss();
  const total = 10_000;
  const started = performance.now();
  const statuses = await randomHosts(total, 'x');
  const ms = performance.now() - started;
  await new Promise((r) => setTimeout(r, 1000)); // let the log lines reach Docker's log
  const calls = ((await activator.metric('activator_docker_api_calls_total')) ?? 0) - callsBefore;
  const lines = (await activator.logLines()).filter((l) => l.code === 'SA_UNKNOWN_HOST').length - linesBefore;
  const growth = (await rss()) - rssBefore;
  t.comment(`figure: ${total} random Hosts in ${Math.round(ms)} ms (${Math.round(total / (ms / 1000))} req/s): ${statuses.get(404) ?? 0} × 404, ${calls} Docker calls, ${lines} log lines for all 12,000, RSS ${mb(rssBefore)} → ${mb(rssBefore + growth)} (after a 2,000-request warm-up)`);
  t.equal(statuses.get(404), total, 'every one 404');
  t.equal(statuses.size, 1, 'and nothing else');
  t.equal(calls, 0, 'no Docker call');
  t.ok(lines <= 100, `log lines bounded (one per host per minute, at most 100 hosts a minute): ${lines}`);
  t.ok(growth < 10 * MB, `RSS flat: ${mb(growth)} growth`);
});

t.test('the activator works through the Docker API proxy: no socket of its own, a sleeping app wakes', async (t) => {
  const spec = (await docker.getService(activator.name).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Mounts?: unknown[]; Env?: string[] } } } };
  t.same(spec.Spec.TaskTemplate.ContainerSpec.Mounts ?? [], [], 'the activator has no Docker socket');
  t.ok(spec.Spec.TaskTemplate.ContainerSpec.Env?.includes(`ACTIVATOR_DOCKER_HOST=${proxy.dockerHost}`));
  const app = await createApp({ name: `${run}-cold`, run });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const res = await send(`${activator.url}/through-the-proxy`, { headers: { host: app.host } });
  t.equal(res.status, 200, 'woken and proxied');
  t.equal(res.header('x-activator-cold-start'), 'true');
  t.equal((await serviceState(app.name)).replicas, 1);
  const id = (await serviceState(app.name)).id;
  const logs = await proxy.logs();
  t.match(logs, new RegExp(`"POST /services/${id}/update\\?version=\\d+ HTTP/1\\.1"`), 'the scale-up went through the proxy');
  t.comment(`figure: cold start through the proxy answered in ${Math.round(res.ms)} ms`);
});

t.test('Docker API calls outside the allow-list: 403 from the socket proxy', async (t) => {
  const forbidden: Array<[string, string, string?]> = [
    ['POST', '/containers/create', '{"Image":"sa/sample-app:dev"}'],
    ['GET', '/secrets'],
    ['GET', '/v1.41/secrets'],
    ['GET', '/configs'],
    ['GET', '/containers/json'],
    ['POST', '/services/create', '{"Name":"x"}'],
    ['DELETE', `/services/${activator.name}`],
    ['GET', '/v1.41/info'],
    ['GET', '/nodes'],
    ['POST', '/swarm/leave'],
    ['GET', '/services/../secrets'],
    ['GET', '/services/x%2F..%2F..%2Fsecrets'],
    ['POST', `/containers/${activator.name}/exec`, '{}'],
  ];
  const agent = new Agent({ connections: 1 });
  let refused = 0;
  for (const [method, path, body] of forbidden) {
    const res = await request(`${proxy.url}${path}`, { method: method as 'GET', dispatcher: agent, ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}) });
    const text = await res.body.text();
    t.equal(res.statusCode, 403, `${method} ${path}: 403`);
    if (res.statusCode === 403) refused++;
    t.match(text, /forbidden by the Docker API proxy/);
  }
  for (const path of ['/_ping', '/v1.41/_ping', '/services', '/tasks']) {
    const res = await request(`${proxy.url}${path}`, { dispatcher: agent });
    await res.body.dump();
    t.equal(res.statusCode, 200, `allowed: GET ${path}`);
  }
  await agent.close();
  t.equal((await docker.listServices({ filters: { name: ['x'] } })).filter((s) => s.Spec?.Name === 'x').length, 0, 'no service was created');
  t.comment(`figure: ${refused} of ${forbidden.length} calls outside the allow-list refused with 403`);
});

t.test('request smuggling (CL+TE, two Content-Lengths, obs-fold, bad chunk sizes): 400, nothing reaches the app', async (t) => {
  await startAwakeApp();
  const h = awake.host;
  const m = `smug-${run}`;
  const cases: Record<string, string> = {
    'CL+TE': `POST /${m}-clte HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /${m}-smuggled HTTP/1.1\r\nHost: ${h}\r\n\r\n`,
    'TE+CL': `POST /${m}-tecl HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /${m}-smuggled2 HTTP/1.1\r\nHost: ${h}\r\n\r\n`,
    'two Content-Lengths': `POST /${m}-dupcl HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd`,
    'obs-fold': `GET /${m}-fold HTTP/1.1\r\nHost: ${h}\r\nX-Foo: a\r\n bar\r\n\r\n`,
    'bad chunk size': `POST /${m}-badchunk HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    'chunk size overflow': `POST /${m}-overflow HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n`,
    'Transfer-Encoding not chunked last': `POST /${m}-tenotlast HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
  };
  let bad = 0;
  for (const [name, raw] of Object.entries(cases)) {
    const answer = await rawExchange(activator.port, raw);
    t.match(answer, /^HTTP\/1\.1 400 /, `${name}: 400`);
    if (answer.startsWith('HTTP/1.1 400 ')) bad++;
  }
  // A GET whose bad chunk comes after a good one: a body streamed to the app would have its head there.
  const late = await new Promise<string>((resolve) => {
    const sock = connect(activator.port, '127.0.0.1', () => sock.write(`GET /${m}-late HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`));
    setTimeout(() => sock.write('zz\r\nabc\r\n0\r\n\r\n'), 300);
    let out = '';
    sock.on('data', (c) => (out += c.toString('latin1')));
    sock.on('close', () => resolve(out));
    sock.on('error', () => resolve(out));
    setTimeout(() => sock.destroy(), 3000);
  });
  t.match(late, /^HTTP\/1\.1 400 /, 'a bad chunk after a good one: 400');
  await new Promise((r) => setTimeout(r, 1000));
  t.same(await appSaw(m), [], 'the app received none of them, not even a head');
  t.comment(`figure: ${bad + (late.startsWith('HTTP/1.1 400 ') ? 1 : 0)} of ${Object.keys(cases).length + 1} malformed requests answered 400; 0 reached the app`);
});

t.test('oversized headers: 431; an oversized chunked body: 413, with nothing sent to the app', async (t) => {
  await startAwakeApp();
  const m = `big-${run}`;
  const head = await rawExchange(activator.port, `GET /${m}-head HTTP/1.1\r\nHost: ${awake.host}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.match(head, /^HTTP\/1\.1 431 /, '20 kB of headers: 431');
  const chunk = 'b'.repeat(16 * 1024);
  const chunks = Array.from({ length: 8 }, () => `${(16 * 1024).toString(16)}\r\n${chunk}\r\n`).join('');
  const body = await rawExchange(activator.port, `POST /${m}-body HTTP/1.1\r\nHost: ${awake.host}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n${chunks}0\r\n\r\n`);
  t.match(body, /^HTTP\/1\.1 413 /, '128 kB chunked over a 64 kB limit: 413');
  t.match(body, /SA_BODY_TOO_LARGE/);
  const get = await rawExchange(activator.port, `GET /${m}-getbody HTTP/1.1\r\nHost: ${awake.host}\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
  t.match(get, /^HTTP\/1\.1 413 /, 'the same as a GET body: 413');
  await new Promise((r) => setTimeout(r, 1000));
  t.same(await appSaw(m), [], 'the app received none of them');
  t.comment(`figure: 20 kB of headers → ${head.slice(9, 12)}; 128 kB chunked body (limit 64 kB) → ${body.slice(9, 12)} (POST), ${get.slice(9, 12)} (GET); 0 requests reached the app`);
});

t.test('1,000 slow-header connections: held memory bounded, another app still answered in its usual time', async (t) => {
  await startAwakeApp();
  const timeOne = async () => (await send(`${activator.url}/timed`, { headers: { host: awake.host } })).ms;
  const sample = async (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await timeOne());
    return out.sort((a, b) => a - b);
  };
  const baseline = await sample(20);
  const rssBefore = await rss();
  const sockets: Socket[] = [];
  let closedByServer = 0;
  let got408 = 0;
  const opened = performance.now();
  await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      new Promise<void>((resolve) => {
        const sock = connect(activator.port, '127.0.0.1', () => {
          sock.write(`GET /slow-${i} HTTP/1.1\r\nHost: slow.example\r\nX-Slow: `);
          resolve();
        });
        sock.on('data', (c) => {
          if (c.toString('latin1').startsWith('HTTP/1.1 408')) got408++;
        });
        sock.on('close', () => closedByServer++);
        sock.on('error', () => resolve());
        sockets.push(sock);
      }),
    ),
  );
  // One byte a second each: never a complete head.
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('a');
  }, 1000);
  t.teardown(() => {
    clearInterval(drip);
    for (const s of sockets) s.destroy();
  });
  await new Promise((r) => setTimeout(r, 1500));
  const rssHeld = await rss();
  const during = await sample(20);
  const p50 = (xs: number[]) => xs[Math.floor(xs.length / 2)] ?? NaN;
  await waitFor('the slow connections cut off', async () => closedByServer >= 1000, 15_000, 100).catch(() => undefined);
  const cutAfter = performance.now() - opened;
  clearInterval(drip);
  t.comment(`figure: 1,000 slow-header connections: RSS ${mb(rssBefore)} → ${mb(rssHeld)} (+${mb(rssHeld - rssBefore)}); another app p50 ${p50(baseline).toFixed(1)} ms before, ${p50(during).toFixed(1)} ms during (max ${during.at(-1)?.toFixed(1)} ms); ${closedByServer} cut off by the activator after ${Math.round(cutAfter)} ms (${got408} with 408)`);
  t.ok(rssHeld - rssBefore < 64 * MB, `held memory bounded: +${mb(rssHeld - rssBefore)} for 1,000 connections`);
  t.ok(p50(during) < p50(baseline) * 3 + 20, `normal requests answered in their usual time (p50 ${p50(during).toFixed(1)} vs ${p50(baseline).toFixed(1)} ms)`);
  t.ok((during.at(-1) ?? Infinity) < 1000, 'none waited as long as a second');
  t.equal(closedByServer, 1000, 'every slow connection was cut off (ACTIVATOR_HEADERS_TIMEOUT 4 s)');
  t.ok(cutAfter < 10_000, `within the headers timeout and a check interval: ${Math.round(cutAfter)} ms`);
});

t.test('500 MB sent before a WebSocket upgrade is answered: refused, RSS growth under 10 MB', async (t) => {
  // Asleep and slow to start: the upgrade is held for a while.
  const app = await createApp({ name: `${run}-wsslow`, run, env: { STARTUP_DELAY_MS: '20000' } });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  const rssBefore = await rss();
  const started = performance.now();
  const result = await new Promise<{ answer: string; written: number }>((resolve) => {
    let answer = '';
    let done = false;
    const sock = connect(activator.port, '127.0.0.1', () => {
      sock.write(`GET /ws HTTP/1.1\r\nHost: ${app.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      const chunk = Buffer.alloc(MB, 0x61);
      let sent = 0;
      const pump = () => {
        while (!done && sent < 500) {
          sent++;
          if (!sock.write(chunk)) return void sock.once('drain', pump);
        }
      };
      pump();
    });
    const finish = () => {
      if (done) return;
      done = true;
      resolve({ answer, written: sock.bytesWritten });
      sock.destroy();
    };
    sock.on('data', (c) => (answer += c.toString('latin1')));
    sock.on('close', finish);
    sock.on('error', finish);
    setTimeout(finish, 20_000);
  });
  const ms = performance.now() - started;
  await new Promise((r) => setTimeout(r, 500));
  const growth = (await rss()) - rssBefore;
  t.comment(`figure: the client got ${mb(result.written)} into the socket before the activator refused it after ${Math.round(ms)} ms (${result.answer.split('\r\n')[0]}); activator RSS +${mb(growth)}`);
  t.match(result.answer, /^HTTP\/1\.1 400 /, 'refused with 400');
  t.match(result.answer, /more than 65536 bytes before the upgrade/);
  t.ok(result.written < 100 * MB, 'long before 500 MB');
  t.ok(growth < 10 * MB, `RSS growth under 10 MB: ${mb(growth)}`);
});

t.test('an awake app with a failing probe, requested by a stranger, keeps its replicas', async (t) => {
  // Scaled up by someone else (replicas 1), its probe never passes (500 is not accepted).
  const app = await createApp({ name: `${run}-probe`, run, replicas: 1, labels: { [LABELS.probePath]: '/status/500', [LABELS.probeStatus]: '200-299', [LABELS.wakeTimeout]: '3s' } });
  t.teardown(app.remove);
  await waitFor('the app running', async () => (await runningTasks(app.name)).length > 0, 30_000, 100);
  await activator.waitForApp(app.name);
  const res = await send(`${activator.url}/`, { headers: { host: app.host, accept: 'application/json' } });
  t.equal(res.status, 504, 'the stranger gets 504 SA_WAKE_TIMEOUT');
  t.equal(res.header('x-activator-error'), 'SA_WAKE_TIMEOUT');
  t.notMatch(res.text(), /task [0-9a-z]{12}|probe: HTTP|\b10\.\d+\.\d+\.\d+\b/, 'no internals in the answer');
  await new Promise((r) => setTimeout(r, 1500));
  const after = await serviceState(app.name);
  t.equal(after.replicas, 1, 'the app keeps its replica');
  t.notMatch(after.labels[LABELS.stateReason] ?? '', /wake failed/, 'and no "wake failed" scale-back was written');
  t.comment(`figure: replicas 1 → ${after.replicas} after a failed wake by a stranger (answer ${res.status} after ${Math.round(res.ms)} ms)`);
});

t.test('Connection: X-Forwarded-For: the app still sees the forwarded headers', async (t) => {
  await startAwakeApp();
  const answer = await rawExchange(
    activator.port,
    `GET /cve-2024-45410 HTTP/1.1\r\nHost: ${awake.host}\r\nConnection: close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Real-Ip\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ${awake.host}\r\nX-Real-Ip: 203.0.113.7\r\n\r\n`,
  );
  t.match(answer, /^HTTP\/1\.1 200 /);
  const echo = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
  t.equal(echo.headers['x-forwarded-for'], '203.0.113.7', 'X-Forwarded-For arrives');
  t.equal(echo.headers['x-forwarded-proto'], 'https', 'X-Forwarded-Proto arrives');
  t.equal(echo.headers['x-forwarded-host'], awake.host, 'X-Forwarded-Host arrives');
  t.equal(echo.headers['x-real-ip'], '203.0.113.7', 'X-Real-Ip arrives');
  t.comment(`figure: with Connection listing them, the app saw X-Forwarded-For=${echo.headers['x-forwarded-for']}, X-Forwarded-Proto=${echo.headers['x-forwarded-proto']}`);
});

t.test('admin routes without a token: 401, whatever the Host; state is untouched', async (t) => {
  await startAwakeApp();
  const before = await serviceState(awake.name);
  const routes: Array<[string, string, string | undefined]> = [
    ['GET', '/api/apps', undefined],
    ['GET', '/api/report', undefined],
    ['GET', '/api/events', undefined],
    ['POST', `/api/apps/${awake.name}/sleep`, undefined],
    ['POST', `/api/apps/${awake.name}/wake`, undefined],
    ['PUT', `/api/apps/${awake.name}/idle-timeout`, JSON.stringify({ idleTimeout: '1s' })],
    ['PUT', `/api/apps/${awake.name}/keep-awake`, JSON.stringify({ window: 'Mon-Sun 00:00-23:59' })],
    ['GET', '/no-such-route', undefined],
  ];
  const statuses: string[] = [];
  for (const [method, path, body] of routes) {
    for (const [why, headers] of [
      ['no token', {}],
      ['wrong token', { authorization: `Bearer ${'x'.repeat(activator.adminToken.length)}` }],
      ['Host of an app', { host: awake.host }],
      ['token in a cookie it never was', { cookie: `sa_session=${activator.adminToken}` }],
    ] as const) {
      // undici's request, not fetch: fetch would not send a Host header of ours.
      const res = await request(`${activator.adminUrl}${path}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body } : {}) });
      await res.body.dump();
      statuses.push(`${method} ${path} (${why}): ${res.statusCode}`);
      t.equal(res.statusCode, 401, `${method} ${path}, ${why}: 401`);
      t.match(String(res.headers['www-authenticate'] ?? ''), /^Bearer realm=/, 'with WWW-Authenticate');
    }
  }
  const after = await serviceState(awake.name);
  t.equal(after.replicas, before.replicas, 'the app kept its replicas (no sleep went through)');
  t.equal(after.labels[LABELS.idleTimeout], before.labels[LABELS.idleTimeout], 'and its idle timeout');
  const ok = await activator.adminFetch('/api/apps');
  t.equal(ok.status, 200, 'the operator token is accepted (the routes exist)');
  await ok.body?.cancel();
  const healthz = await fetch(`${activator.adminUrl}/healthz`);
  t.equal(healthz.status, 200, '/healthz stays public');
  t.comment(`figure: ${statuses.length} unauthenticated admin requests, ${statuses.filter((s) => s.endsWith(': 401')).length} answered 401`);
});
