/**
 * HTTP client for tests. fetch() forbids setting Host, but Traefik's contract is all about Host,
 * so tests use undici.request, which sends headers as given.
 */
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import WebSocket from 'ws';

const agent = new Agent({ connections: 512, pipelining: 1, keepAliveTimeout: 1000 });

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  header(name: string): string | undefined;
  text(): string;
  json<T = unknown>(): T;
  ms: number;
}

export async function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Reply> {
  const started = performance.now();
  const res = await request(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers ?? {},
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    dispatcher: agent,
    headersTimeout: opts.timeoutMs ?? 120_000,
    bodyTimeout: opts.timeoutMs ?? 120_000,
  });
  const body = await res.body.text();
  const ms = performance.now() - started;
  const headers = res.headers as Record<string, string | string[] | undefined>;
  return {
    status: res.statusCode,
    headers,
    header: (name) => {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    text: () => body,
    json: <T>() => JSON.parse(body) as T,
    ms,
  };
}

/** Opens a WebSocket through the activator, as a browser would (Host set), once it is open. */
export async function openWebSocket(url: string, host: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { host } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Sends a message and waits for the echo (the sample app echoes). */
export function echo(ws: WebSocket, text: string): Promise<string> {
  const answer = new Promise<string>((resolve) => ws.once('message', (d) => resolve((d as Buffer).toString())));
  ws.send(text);
  return answer;
}

/** Closes the WebSocket and waits until it is closed. */
export async function closeWebSocket(ws: WebSocket): Promise<void> {
  const closed = new Promise((r) => ws.once('close', r));
  ws.close();
  await closed;
}

/** Raw HTTP/1.1 exchange on 127.0.0.1: what came back before the server closed (or the time ran out), as written. */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(data));
    let out = '';
    sock.on('data', (c: Buffer) => (out += c.toString('latin1')));
    sock.on('close', () => resolve(out));
    sock.on('error', () => resolve(out));
    setTimeout(() => sock.destroy(), timeoutMs);
  });
}
