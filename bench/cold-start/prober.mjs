// The cold-start floor, measured from inside the test swarm's network. Runs as a Swarm service on
// the attachable overlay network (image sa/sample-app:dev, this file bind-mounted), with the
// Docker socket mounted. GET /measure?service=NAME does, for one cycle:
//   t0 → scale NAME to 1 (inspect, then update with the version) → poll its tasks every 5 ms for
//   the new task's address on NETWORK → from the task container's `start` event on, GET
//   http://<task IP>:80/health every 5 ms (each on a new connection, 250 ms timeout, at most 20 in
//   flight) → first 2xx: floorMs = that − t0.
// Why wait for the container's start event: a probe sent to the address before the container's
// network endpoint exists gets no ARP answer, and the kernel then holds every later packet to that
// address until its next ARP retry, a second later: the floor would be ~1 s too high. Nothing can
// answer before the container's process has started, so this loses nothing.
// It keeps polling the task list every 5 ms until the task is `running`, for the breakdown.
// GET /measure-many?services=A,B,… is the same for many services scaled at once (see measureMany).
// Env: PORT (control port), NETWORK, DOCKER_SOCK. Plain ESM, no dependencies.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const PORT = Number(process.env.PORT ?? 9000);
const NETWORK = process.env.NETWORK ?? 'sa-net';
const SOCK = process.env.DOCKER_SOCK ?? '/var/run/docker.sock';

function docker(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath: SOCK, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 300) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        resolve(text ? JSON.parse(text) : undefined);
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(data);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function probeOnce(ip, path, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port: 80, path, agent: false, timeout: timeoutMs, headers: { 'user-agent': 'bench-floor-probe' } }, (res) => {
      res.resume();
      resolve(res.statusCode >= 200 && res.statusCode < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * Resolves with the arrival time of the service's first container `start` event. `since` replays
 * events from just before the call, so the subscription cannot miss it (dockerd sends the response
 * headers of /events only with the first event, so there is nothing to wait for before scaling).
 */
function containerStarted(service, signal) {
  const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: ['start'], label: [`com.docker.swarm.service.name=${service}`] }));
  const since = (Date.now() / 1000 - 0.5).toFixed(3);
  return new Promise((resolve) => {
    const req = http.request({ socketPath: SOCK, method: 'GET', path: `/events?since=${since}&filters=${filters}`, signal }, (res) => {
      res.once('data', () => resolve(performance.now()));
      res.on('error', () => undefined);
    });
    req.on('error', () => undefined);
    req.end();
  });
}

async function measure(service, timeoutMs, intervalMs) {
  const events = new AbortController();
  const startEvent = containerStarted(service, events.signal);
  let startedAt;
  startEvent.then((t) => (startedAt = t));
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  const svc = await docker('GET', `/services/${encodeURIComponent(service)}`);
  const spec = svc.Spec;
  spec.Mode = { Replicated: { Replicas: 1 } };
  await docker('POST', `/services/${encodeURIComponent(service)}/update?version=${svc.Version.Index}`, spec);
  const scaleCallMs = performance.now() - t0;

  const filters = encodeURIComponent(JSON.stringify({ service: [service], 'desired-state': ['running'] }));
  let ip;
  let addressMs;
  let runningMs;
  let floorMs;
  let attempts = 0;

  // Task list every 5 ms: the address (as soon as Swarm allocates it) and the `running` time.
  const taskWatch = (async () => {
    while (runningMs === undefined && performance.now() < deadline) {
      const tick = performance.now();
      const tasks = await docker('GET', `/tasks?filters=${filters}`);
      for (const t of tasks) {
        const att = (t.NetworksAttachments ?? []).find((a) => a.Network?.Spec?.Name === NETWORK);
        const addr = att?.Addresses?.[0]?.split('/')[0];
        if (addr && ip === undefined) {
          ip = addr;
          addressMs = performance.now() - t0;
        }
        if (t.Status?.State === 'running' && runningMs === undefined) runningMs = performance.now() - t0;
      }
      await sleep(Math.max(0, intervalMs - (performance.now() - tick)));
    }
  })();

  // HTTP probes every 5 ms once the address is known; the first 2xx ends the cycle.
  await new Promise((resolve) => {
    let inFlight = 0;
    const timer = setInterval(() => {
      if (floorMs !== undefined || performance.now() > deadline) {
        clearInterval(timer);
        return resolve();
      }
      if (ip === undefined || startedAt === undefined || inFlight >= 20) return;
      inFlight++;
      attempts++;
      probeOnce(ip, '/health', 250).then((ok) => {
        inFlight--;
        if (ok && floorMs === undefined) {
          floorMs = performance.now() - t0;
          clearInterval(timer);
          resolve();
        }
      });
    }, intervalMs);
  });
  await taskWatch;
  events.abort();
  if (floorMs === undefined) throw new Error(`no 2xx from ${service} (${ip ?? 'no address'}) within ${timeoutMs} ms`);
  return { floorMs, scaleCallMs, addressMs, containerStartMs: startedAt === undefined ? undefined : startedAt - t0, runningMs, attempts, ip };
}

// GET /measure-many?services=A,B,…: the concurrent floor (bench `mondayMorning`). Scales every
// service to 1 at once (t0 = before the first call), lists all their tasks in one call every
// intervalMs (50 ms default: one list for all, so the floor's own polling stays light), and once a
// task is `running` (its container, so its network endpoint, exists) probes its address every
// 20 ms (at most 2 in flight per service). floorMs per service: first 2xx − t0.
async function measureMany(services, timeoutMs, intervalMs) {
  const ids = new Map();
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  await Promise.all(services.map(async (service) => {
    const svc = await docker('GET', `/services/${encodeURIComponent(service)}`);
    ids.set(svc.ID, service);
    const spec = svc.Spec;
    spec.Mode = { Replicated: { Replicas: 1 } };
    await docker('POST', `/services/${encodeURIComponent(service)}/update?version=${svc.Version.Index}`, spec);
  }));
  const scaleCallsMs = performance.now() - t0;
  const ipOf = new Map();
  const runningMs = new Map();
  const floorMs = new Map();
  const inFlight = new Map();
  const filters = encodeURIComponent(JSON.stringify({ service: services, 'desired-state': ['running'] }));
  const taskWatch = (async () => {
    while (runningMs.size < services.length && performance.now() < deadline) {
      const tick = performance.now();
      for (const t of await docker('GET', `/tasks?filters=${filters}`)) {
        const service = ids.get(t.ServiceID);
        if (!service || t.Status?.State !== 'running' || runningMs.has(service)) continue;
        const addr = (t.NetworksAttachments ?? []).find((a) => a.Network?.Spec?.Name === NETWORK)?.Addresses?.[0]?.split('/')[0];
        if (!addr) continue;
        ipOf.set(service, addr);
        runningMs.set(service, performance.now() - t0);
      }
      await sleep(Math.max(0, intervalMs - (performance.now() - tick)));
    }
  })();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (floorMs.size === services.length || performance.now() > deadline) {
        clearInterval(timer);
        return resolve();
      }
      for (const [service, ip] of ipOf) {
        if (floorMs.has(service) || (inFlight.get(service) ?? 0) >= 2) continue;
        inFlight.set(service, (inFlight.get(service) ?? 0) + 1);
        probeOnce(ip, '/health', 1000).then((ok) => {
          inFlight.set(service, inFlight.get(service) - 1);
          if (ok && !floorMs.has(service)) floorMs.set(service, performance.now() - t0);
        });
      }
    }, 20);
  });
  await taskWatch;
  const missing = services.filter((s) => !floorMs.has(s));
  if (missing.length > 0) throw new Error(`no 2xx from ${missing.length} of ${services.length} services within ${timeoutMs} ms (first: ${missing[0]})`);
  return { scaleCallsMs, floorMs: services.map((s) => floorMs.get(s)), runningMs: services.map((s) => runningMs.get(s)) };
}

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, 'http://prober');
    try {
      if (url.pathname === '/ping') return res.end('ok');
      if (url.pathname === '/measure-many') {
        const services = (url.searchParams.get('services') ?? '').split(',').filter(Boolean);
        const result = await measureMany(services, Number(url.searchParams.get('timeoutMs') ?? 120_000), Number(url.searchParams.get('intervalMs') ?? 50));
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify(result));
      }
      if (url.pathname !== '/measure') {
        res.statusCode = 404;
        return res.end();
      }
      const result = await measure(url.searchParams.get('service'), Number(url.searchParams.get('timeoutMs') ?? 30_000), Number(url.searchParams.get('intervalMs') ?? 5));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(result));
    } catch (err) {
      res.statusCode = 500;
      res.end(JSON.stringify({ error: String(err?.message ?? err) }));
    }
  })
  .listen(PORT, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
