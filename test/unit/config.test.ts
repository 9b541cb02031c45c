import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { adminTokenEnv } from '../helpers/admin-tokens.js';

t.test('defaults', async (t) => {
  const c = loadConfig(adminTokenEnv());
  t.equal(c.port, 8080);
  t.equal(c.adminPort, 8081);
  t.equal(c.strategy, 'blocking');
  t.equal(c.wakeTimeoutMs, 60_000);
  t.equal(c.probeIntervalMs, 20, 'probes at most every 25 ms while waking');
  t.equal(c.maxBodyBytes, 10 * 1024 * 1024);
  t.equal(c.wakeRetryBackoffMs, 10_000);
  t.equal(c.dockerHost, 'unix:///var/run/docker.sock');
  t.ok(Object.isFrozen(c));
});

t.test('values from the environment', async (t) => {
  const c = loadConfig({
    ...adminTokenEnv(),
    DOCKER_HOST: 'tcp://10.0.0.1:2375',
    ACTIVATOR_MAX_BODY: '512kb',
    ACTIVATOR_WAKE_TIMEOUT: '2m',
    ACTIVATOR_WAKE_RETRY_BACKOFF: '0',
    ACTIVATOR_SELECTOR: 'team=web',
    ACTIVATOR_STRATEGY: 'waiting-page',
    ACTIVATOR_MONITOR_USER_AGENTS: 'UptimeRobot|Pingdom',
  });
  t.equal(c.dockerHost, 'tcp://10.0.0.1:2375');
  t.equal(c.maxBodyBytes, 512 * 1024);
  t.equal(c.wakeTimeoutMs, 120_000);
  t.equal(c.wakeRetryBackoffMs, 0, 'backoff off');
  t.same(c.selector, { key: 'team', value: 'web' });
  t.equal(c.strategy, 'waiting-page');
  t.ok(c.monitorUserAgents?.test('Mozilla/5.0 (compatible; UptimeRobot/2.0)'));
});

t.test('a bad value names its key', async (t) => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ ACTIVATOR_PORT: 'eighty' }, 'ACTIVATOR_PORT'],
    [{ ACTIVATOR_WAKE_TIMEOUT: '5 minutes' }, 'ACTIVATOR_WAKE_TIMEOUT'],
    [{ ACTIVATOR_WAKE_RETRY_BACKOFF: 'soon' }, 'ACTIVATOR_WAKE_RETRY_BACKOFF'],
    [{ ACTIVATOR_MAX_BODY: 'lots' }, 'ACTIVATOR_MAX_BODY'],
    [{ ACTIVATOR_STRATEGY: 'lazy' }, 'ACTIVATOR_STRATEGY'],
    [{ ACTIVATOR_REDIS_URL: 'localhost:6379' }, 'ACTIVATOR_REDIS_URL'],
    [{ ACTIVATOR_SELECTOR: 'novalue' }, 'ACTIVATOR_SELECTOR'],
    [{ ACTIVATOR_DOCKER_HOST: '/var/run/docker.sock' }, 'ACTIVATOR_DOCKER_HOST'],
    [{ ACTIVATOR_LOG_LEVEL: 'loud' }, 'ACTIVATOR_LOG_LEVEL'],
    [{ ACTIVATOR_MONITOR_USER_AGENTS: '(' }, 'ACTIVATOR_MONITOR_USER_AGENTS'],
    [{ ACTIVATOR_IDLE_TIMEOUT: '30d' }, 'ACTIVATOR_IDLE_TIMEOUT'],
    [{ ACTIVATOR_TRUSTED_PROXIES: '10.0.0.0/33' }, 'ACTIVATOR_TRUSTED_PROXIES'],
    [{ ACTIVATOR_TRUSTED_PROXIES: 'traefik' }, 'ACTIVATOR_TRUSTED_PROXIES'],
    [{ ACTIVATOR_MAX_BUFFERED_BODY: 'lots' }, 'ACTIVATOR_MAX_BUFFERED_BODY'],
    [{ ACTIVATOR_HEADERS_TIMEOUT: '20s', ACTIVATOR_REQUEST_TIMEOUT: '10s' }, 'ACTIVATOR_REQUEST_TIMEOUT'],
  ];
  for (const [env, key] of bad) {
    let caught: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof ConfigError, `${key}: a ConfigError`);
    t.equal((caught as ConfigError).key, key);
    t.ok((caught as Error).message.startsWith(`${key}: `), `message names ${key}: ${(caught as Error).message}`);
  }
});

t.test('credentials in a bad URL are not repeated in the error', async (t) => {
  let caught: unknown;
  try {
    loadConfig({ ACTIVATOR_REDIS_URL: 'http://ops:s3cret@redis:6379' });
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof ConfigError);
  t.notMatch((caught as Error).message, /s3cret/, (caught as Error).message);
  t.match((caught as Error).message, /ops:\*\*\*@redis/);
});

t.test('trusted proxies: CIDRs, addresses, local-networks (the default) or none', async (t) => {
  t.same(loadConfig(adminTokenEnv()).trustedProxies, ['local-networks']);
  t.same(loadConfig({ ...adminTokenEnv(), ACTIVATOR_TRUSTED_PROXIES: '10.0.1.0/24, 10.0.2.7,fd00::/8' }).trustedProxies, ['10.0.1.0/24', '10.0.2.7', 'fd00::/8']);
  t.same(loadConfig({ ...adminTokenEnv(), ACTIVATOR_TRUSTED_PROXIES: 'none' }).trustedProxies, []);
});
