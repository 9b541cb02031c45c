/** The image's HEALTHCHECK script: where it looks (the configured admin port) and what it accepts. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { checkHealth, healthUrl } from '../../src/healthcheck.js';

t.test('healthUrl follows ACTIVATOR_ADMIN_PORT and ACTIVATOR_HOST', async (t) => {
  t.equal(healthUrl({}), 'http://127.0.0.1:8081/healthz');
  t.equal(healthUrl({ ACTIVATOR_ADMIN_PORT: '9191' }), 'http://127.0.0.1:9191/healthz');
  t.equal(healthUrl({ ACTIVATOR_HOST: '10.0.0.5' }), 'http://10.0.0.5:8081/healthz');
  t.equal(healthUrl({ ACTIVATOR_HOST: '::1' }), 'http://[::1]:8081/healthz');
  t.throws(() => healthUrl({ ACTIVATOR_ADMIN_PORT: 'eighty' }), /ACTIVATOR_ADMIN_PORT/, 'a bad value names the key');
});

t.test('checkHealth: 2xx is healthy; an error status, a refused port or a hang is not', async (t) => {
  let status = 200;
  const server = createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    res.statusCode = status;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.match(await checkHealth(`${base}/healthz`), { ok: true, detail: /HTTP 200/ });
  status = 503;
  t.match(await checkHealth(`${base}/healthz`), { ok: false, detail: /HTTP 503/ });
  t.match(await checkHealth(`${base}/hang`, 200), { ok: false, detail: /abort|timeout/i });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  t.match(await checkHealth(`http://127.0.0.1:${port}/healthz`), { ok: false, detail: /ECONNREFUSED/ }, 'nothing listening');
});
