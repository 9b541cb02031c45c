/**
 * Headers across the proxy, as flat name/value lists (Node's rawHeaders shape, which undici takes
 * as is): towards the app as Traefik would send them, and back, each without the headers that only
 * describe one hop's connection. Names keep the sender's spelling and order; repeats stay repeated.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ROUTE_MARKER_HEADER } from './route-guard.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1), plus Expect (Node already answered 100-continue).
 * Transfer-Encoding goes too: bodies reach the app buffered, with a Content-Length, and reach the
 * client re-framed by Node. The route marker (route-guard.ts) is ours: the app never sees it.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'expect', ROUTE_MARKER_HEADER]);
/** An upgrade (WebSocket) keeps the headers that ask for it: the tunnel carries the app's raw answer. */
const UPGRADE_KEEPS = new Set(['connection', 'upgrade']);
/**
 * Never dropped because a Connection header lists them: `Connection: X-Forwarded-For` would strip
 * what the app relies on for the client's address (the pattern of Traefik's CVE-2024-45410).
 */
function protectedFromConnection(lower: string): boolean {
  return lower === 'host' || lower.startsWith('x-forwarded-') || lower === 'x-real-ip' || lower === 'forwarded';
}
/** Headers that say who the client is: believed only from a trusted peer, replaced otherwise. */
function isForwardedHeader(lower: string): boolean {
  return lower.startsWith('x-forwarded-') || lower === 'x-real-ip' || lower === 'forwarded';
}

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
    if (name && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade' && !protectedFromConnection(name)) (set ??= new Set()).add(name);
  }
  return set;
}

/**
 * Peers whose X-Forwarded-* headers are believed (Traefik's forwardedHeaders.trustedIPs): CIDRs or
 * addresses, and `local-networks` for the subnets of this host's (container's) own interfaces,
 * i.e. the overlay networks the activator is on, where Traefik reaches it, and loopback.
 */
export class TrustedPeers {
  private readonly list = new BlockList();
  readonly describe: string[] = [];
  /** Per connection, not per request: keep-alive reuses sockets (the check's cost: docs/performance.md). */
  private readonly bySocket = new WeakMap<object, boolean>();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      if (entry === 'local-networks') {
        for (const addrs of Object.values(networkInterfaces())) {
          for (const a of addrs ?? []) if (a.cidr) this.add(a.cidr);
        }
      } else this.add(entry);
    }
  }

  private add(cidr: string): void {
    const [ip = '', bits] = cidr.split('/');
    const family = isIP(ip);
    if (family === 0) throw new Error(`"${cidr}" is not an IP address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`"${cidr}" has an invalid prefix length`);
    this.list.addSubnet(ip, prefix, type);
    this.describe.push(`${ip}/${prefix}`);
  }

  /** Whether the peer of this connection is trusted (cached for the connection's life). */
  trusts(socket: { remoteAddress?: string | undefined }): boolean {
    let trusted = this.bySocket.get(socket);
    if (trusted === undefined) {
      trusted = this.has(socket.remoteAddress);
      this.bySocket.set(socket, trusted);
    }
    return trusted;
  }

  has(address: string | undefined): boolean {
    if (!address) return false;
    const ip = address.startsWith('::ffff:') ? address.slice(7) : address;
    const family = isIP(ip);
    return family !== 0 && this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * Request headers for the app: the client's (Host kept) and the X-Forwarded-* headers Traefik
 * set. From a peer that is not trusted, the client's own X-Forwarded-*, X-Real-Ip and Forwarded
 * are dropped and replaced, as Traefik does for untrusted peers; a trusted peer's are kept, and
 * added as Traefik would when it sent none.
 */
export function headersForApp(raw: IncomingMessage, trusted: TrustedPeers | undefined, upgrade = false): string[] {
  let out = withoutHopByHop(raw.rawHeaders, upgrade);
  const peer = raw.socket.remoteAddress;
  const believed = trusted === undefined || trusted.trusts(raw.socket);
  const h = raw.headers;
  if (!believed) out = withoutForwarded(out);
  if (!believed || h['x-forwarded-for'] === undefined) {
    const ip = peer?.startsWith('::ffff:') ? peer.slice(7) : peer;
    if (ip) out.push('X-Forwarded-For', ip);
    if (!believed || h['x-forwarded-proto'] === undefined) out.push('X-Forwarded-Proto', 'http');
    if ((!believed || h['x-forwarded-host'] === undefined) && h.host) out.push('X-Forwarded-Host', h.host);
    if (!believed && ip) out.push('X-Real-Ip', ip);
  }
  return out;
}

function withoutForwarded(flat: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!isForwardedHeader((flat[i] as string).toLowerCase())) kept.push(flat[i] as string, flat[i + 1] as string);
  }
  return kept;
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
