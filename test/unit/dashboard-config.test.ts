// The dashboard's and the waiting page's settings: validated at start-up, errors name the variable.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { adminTokenEnv } from '../helpers/admin-tokens.js';

t.test('ACTIVATOR_WAITING_PAGE_DIR and ACTIVATOR_DASHBOARD_MAX_CLIENTS', async (t) => {
  const base = adminTokenEnv();
  const dir = mkdtempSync(join(tmpdir(), 'sa-pages-'));
  const file = join(dir, 'not-a-dir.html');
  writeFileSync(file, 'x');
  t.equal(loadConfig(base).waitingPageDir, undefined);
  t.equal(loadConfig(base).dashboardMaxClients, 32);
  t.equal(loadConfig({ ...base, ACTIVATOR_WAITING_PAGE_DIR: dir }).waitingPageDir, dir);
  t.equal(loadConfig({ ...base, ACTIVATOR_DASHBOARD_MAX_CLIENTS: '5' }).dashboardMaxClients, 5);
  for (const [key, value, message] of [
    ['ACTIVATOR_WAITING_PAGE_DIR', 'templates', /absolute path/],
    ['ACTIVATOR_WAITING_PAGE_DIR', join(dir, 'missing'), /no such folder/],
    ['ACTIVATOR_WAITING_PAGE_DIR', file, /not a folder/],
    ['ACTIVATOR_DASHBOARD_MAX_CLIENTS', '0', /between 1 and 10000/],
    ['ACTIVATOR_DASHBOARD_MAX_CLIENTS', 'many', /whole number/],
  ] as const) {
    let caught: unknown;
    try {
      loadConfig({ ...base, [key]: value });
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof ConfigError, `${key}=${value}: a ConfigError`);
    t.equal((caught as ConfigError).key, key, 'naming the variable');
    t.match((caught as ConfigError).message, message);
  }
});
