/** Admin tokens for in-process tests: values, token files (as the activator reads them), auth options. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminToken, type AdminTokens } from '../../src/config.js';
import type { AdminAuthOptions } from '../../src/http/admin-auth.js';
import { MemoryStore } from '../../src/store/memory-store.js';

export function newToken(): string {
  return randomBytes(24).toString('hex');
}

export function adminTokens(values: { operate?: string; read?: string; metrics?: string } = { operate: newToken() }): AdminTokens {
  const wrap = (v: string | undefined, source: string) => (v === undefined ? undefined : new AdminToken(v, source));
  return {
    operate: wrap(values.operate, 'ACTIVATOR_ADMIN_TOKEN_FILE'),
    read: wrap(values.read, 'ACTIVATOR_ADMIN_READ_TOKEN_FILE'),
    metrics: wrap(values.metrics, 'ACTIVATOR_METRICS_TOKEN_FILE'),
  };
}

/** AdminAuthOptions with an operator token (and its header), sessions in a MemoryStore. */
export function testAuth(overrides: Partial<AdminAuthOptions> = {}): { auth: AdminAuthOptions; token: string; headers: { authorization: string } } {
  const token = newToken();
  return {
    auth: { tokens: adminTokens({ operate: token }), store: new MemoryStore(), sessionTtlMs: 3_600_000, ...overrides },
    token,
    headers: { authorization: `Bearer ${token}` },
  };
}

/** A token written to a file in a fresh temp directory (mode 0600): the path and the value. */
export function tokenFile(value = newToken(), name = 'token'): { path: string; value: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sa-token-'));
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return { path, value };
}

/** The environment an in-process activator needs for its admin API (an operator token file). */
export function adminTokenEnv(): Record<string, string> {
  return { ACTIVATOR_ADMIN_TOKEN_FILE: tokenFile().path };
}
