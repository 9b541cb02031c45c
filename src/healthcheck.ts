/**
 * The image's HEALTHCHECK: GET /healthz on the admin port (ACTIVATOR_ADMIN_PORT, ACTIVATOR_HOST),
 * exit 0 when it answers 2xx within 2 s, else 1. Node only: the image has no curl.
 */
import { pathToFileURL } from 'node:url';

/**
 * Where the admin server is reachable from inside its own container. Reads only the two keys it
 * needs, with loadConfig's defaults: the full configuration also reads the token files, which a
 * health check every few seconds has no business opening (nor failing on).
 */
export function healthUrl(env: NodeJS.ProcessEnv = process.env): string {
  const listen = env.ACTIVATOR_HOST?.trim() || '0.0.0.0';
  const portText = env.ACTIVATOR_ADMIN_PORT?.trim() || '8081';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) throw new Error(`ACTIVATOR_ADMIN_PORT: "${portText}" is not a port (0-65535)`);
  const wildcard = listen === '0.0.0.0' || listen === '::';
  const host = wildcard ? '127.0.0.1' : listen.includes(':') ? `[${listen}]` : listen;
  return `http://${host}:${Number(portText)}/healthz`;
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
