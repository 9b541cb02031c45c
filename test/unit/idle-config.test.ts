import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { adminTokenEnv } from '../helpers/admin-tokens.js';

t.test('idle keys: defaults', async (t) => {
  const c = loadConfig(adminTokenEnv());
  t.equal(c.networkActivityBytes, 1024);
  t.equal(c.redisPrefix, 'swarm-activator:');
  t.equal(c.idleCheckIntervalMs, 10_000);
  t.equal(c.redisUrl, undefined, 'the embedded memory store unless Redis is configured');
});

t.test('idle keys: from the environment, errors name the key', async (t) => {
  const c = loadConfig({ ...adminTokenEnv(), ACTIVATOR_NETWORK_ACTIVITY_BYTES: '4kb', ACTIVATOR_REDIS_PREFIX: 'sa:prod:', ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms' });
  t.equal(c.networkActivityBytes, 4096);
  t.equal(c.redisPrefix, 'sa:prod:');
  t.equal(c.idleCheckIntervalMs, 500);
  t.throws(() => loadConfig({ ACTIVATOR_NETWORK_ACTIVITY_BYTES: 'lots' }), { name: 'ConfigError', message: /^ACTIVATOR_NETWORK_ACTIVITY_BYTES: / }, 'bad size');
  t.throws(() => loadConfig({ ACTIVATOR_REDIS_PREFIX: 'a b' }), { name: 'ConfigError', message: /^ACTIVATOR_REDIS_PREFIX: / });
});
