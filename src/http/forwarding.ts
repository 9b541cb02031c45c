/**
 * Headers across the proxy, as flat name/value lists (Node's rawHeaders shape, which undici takes
 * as is): towards the app as Traefik would send them, and back, each without the headers that only
 * describe one hop's connection. Names keep the sender's spelling and order; repeats stay repeated.
 */
import type { IncomingMessage } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1), plus Expect (Node already answered 100-continue).
 * Transfer-Encoding goes too: bodies reach the app buffered, with a Content-Length, and reach the
 * client re-framed by Node.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'expect']);
/** An upgrade (WebSocket) keeps the headers that ask for it: the tunnel carries the app's raw answer. */
const UPGRADE_KEEPS = new Set(['connection', 'upgrade']);

/**
 * Drops hop-by-hop headers and those a Connection header lists.
 * `upgrade`: keep Connection and Upgrade (the WebSocket tunnel's handshake needs them).
 */
export function withoutHopByHop(flat: readonly string[], upgrade = false): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'connection') listed = connectionListed(value, listed);
    if (HOP_BY_HOP.has(lower) && !(upgrade && UPGRADE_KEEPS.has(lower))) continue;
    out.push(name, value);
  }
  if (!listed) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!listed.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
  }
  return kept;
}

function connectionListed(value: string, into: Set<string> | undefined): Set<string> | undefined {
  let set = into;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade') (set ??= new Set()).add(name);
  }
  return set;
}

/**
 * Request headers for the app: the client's (Host kept) and the X-Forwarded-* headers Traefik
 * set. A request that did not come through Traefik gets them added, as Traefik would.
 */
export function headersForApp(raw: IncomingMessage, upgrade = false): string[] {
  const out = withoutHopByHop(raw.rawHeaders, upgrade);
  const h = raw.headers;
  if (h['x-forwarded-for'] === undefined) {
    const ip = raw.socket.remoteAddress;
    if (ip) out.push('X-Forwarded-For', ip.startsWith('::ffff:') ? ip.slice(7) : ip);
    if (h['x-forwarded-proto'] === undefined) out.push('X-Forwarded-Proto', 'http');
    if (h['x-forwarded-host'] === undefined && h.host) out.push('X-Forwarded-Host', h.host);
  }
  return out;
}

/** The app's response head as it goes to the client. latin1: header bytes pass through unchanged. */
export function headersForClient(raw: readonly Buffer[]): string[] {
  const flat = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) flat[i] = (raw[i] as Buffer).toString('latin1');
  return withoutHopByHop(flat);
}

const RETRYABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'EAI_AGAIN']);

/** Errors that prove the request never reached the app, so a retry cannot run it twice. */
export function isRetryableConnectError(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code && RETRYABLE.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
