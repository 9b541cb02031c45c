/**
 * The image's HEALTHCHECK: GET /healthz on the admin port (the same configuration the activator
 * reads), exit 0 when it answers 2xx within 2 s, else 1. Node only: the image has no curl.
 */
import { pathToFileURL } from 'node:url';
import { loadConfig } from './config.js';

/** Where the admin server is reachable from inside its own container. */
export function healthUrl(env: NodeJS.ProcessEnv = process.env): string {
  const config = loadConfig(env);
  const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === '';
  const host = wildcard ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${config.adminPort}/healthz`;
}

export async function checkHealth(url: string, timeoutMs = 2000): Promise<{ ok: boolean; detail: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return { ok: res.ok, detail: `${url}: HTTP ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, detail: `${url}: ${(err as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}` };
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let url: string;
  try {
    url = healthUrl();
  } catch (err) {
    process.stderr.write(`healthcheck: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const result = await checkHealth(url);
  process.stdout.write(`${result.detail}\n`);
  process.exit(result.ok ? 0 : 1);
}
