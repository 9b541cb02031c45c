// The dashboard's routes on the real admin app (auth hook included): the page is public with a
// strict CSP, the live feed needs a token or a session (read-only is enough), and a stream that
// is open does not hold the admin app's close up.
import { get } from 'node:http';
import t from 'tap';
import { LABELS } from '../../../src/labels.js';
import { WakeHistory } from '../../../src/wake/wake-history.js';
import { fakeAdminApp } from '../../helpers/admin-app.js';
import { newToken } from '../../helpers/admin-tokens.js';
import { FakeRegistry, entry } from '../../helpers/idle-fakes.js';

const OPERATE = newToken();
const READ = newToken();

async function setup(t: { teardown(fn: () => unknown): void }) {
  const registry = new FakeRegistry([entry('web', { replicas: 0, labels: { [LABELS.deployEnv]: 'pr-1' } })]);
  const history = new WakeHistory();
  const app = await fakeAdminApp(t, { registry, tokens: { operate: OPERATE, read: READ }, history });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, port, registry, history };
}

function openStream(port: number, headers: Record<string, string>): Promise<{ status: number; first: Promise<string>; done: Promise<void>; text(): string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/api/events', headers }, (res) => {
      res.setEncoding('utf8');
      let buf = '';
      const first = new Promise<string>((ok) => res.on('data', (c: string) => ((buf += c), buf.includes('\n\n') && ok(buf))));
      const done = new Promise<void>((ok) => res.once('end', ok).once('close', ok));
      resolve({ status: res.statusCode ?? 0, first, done, text: () => buf });
      if (res.statusCode !== 200) res.resume();
    }).on('error', reject);
  });
}

t.test('the page and its code are public, with a strict content security policy', async (t) => {
  const { app } = await setup(t);
  for (const [url, type] of [['/', 'text/html'], ['/dashboard.js', 'text/javascript'], ['/dashboard.css', 'text/css']] as const) {
    const res = await app.inject({ url });
    t.equal(res.statusCode, 200, `${url} without a token`);
    t.match(res.headers['content-type'], type);
    t.match(res.headers['content-security-policy'], /default-src 'none'; script-src 'self'/, 'no inline script, nothing from elsewhere');
    t.equal(res.headers['x-content-type-options'], 'nosniff');
  }
  t.match((await app.inject({ url: '/' })).body, /<form id="login"/);
  t.equal((await app.inject({ url: '/api/apps' })).statusCode, 401, 'the data is not');
});

t.test('the live feed: 401 without credentials, a snapshot with a read-only token or a session', async (t) => {
  const { app, port, registry } = await setup(t);
  const none = await openStream(port, {});
  t.equal(none.status, 401);
  const wrong = await openStream(port, { authorization: `Bearer ${newToken()}` });
  t.equal(wrong.status, 401);

  const read = await openStream(port, { authorization: `Bearer ${READ}` });
  t.equal(read.status, 200, 'read-only is enough to watch');
  const snapshot = await read.first;
  t.match(snapshot, /^event: snapshot\ndata: /);
  const data = JSON.parse(snapshot.split('\n')[1]!.slice(6)) as { apps: Array<{ service: string; environment: string; display: { state: string } }> };
  t.same(data.apps.map((a) => [a.service, a.environment, a.display.state]), [['web', 'pr-1', 'asleep']]);

  const login = await app.inject({ method: 'POST', url: '/login', headers: { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` }, payload: { token: OPERATE } });
  t.equal(login.statusCode, 200);
  const cookie = login.cookies.find((c) => c.name === 'sa_session');
  const bySession = await openStream(port, { cookie: `sa_session=${cookie?.value}` });
  t.equal(bySession.status, 200, 'the browser session works for the feed');
  await bySession.first;

  // A registry change reaches both streams.
  const changed = entry('web', { replicas: 1, labels: { [LABELS.deployEnv]: 'pr-1', [LABELS.stateReason]: 'woken: ops API' } });
  registry.set(changed);
  for (const stream of [read, bySession]) {
    const deadline = Date.now() + 2000;
    while (!/event: app\ndata: .*"reason":"woken: ops API"/.test(stream.text()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.match(stream.text(), /event: app\ndata: \{"service":"web".*"state":"awake"/, 'the change is pushed to the stream');
  }

  // Open streams do not hold the close up.
  const started = Date.now();
  await app.close();
  await Promise.all([read.done, bySession.done]);
  t.ok(Date.now() - started < 2000, `closed with two open streams in ${Date.now() - started} ms`);
});
