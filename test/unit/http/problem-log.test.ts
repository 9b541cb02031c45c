/** ProblemLog: error lines rate-limited per app and code; unknown Hosts bounded in keys and time. */
import { Writable } from 'node:stream';
import t from 'tap';
import pino from 'pino';
import { ProblemLog } from '../../../src/http/problem-log.js';
import type { HttpProblem } from '../../../src/http/error-page.js';

function capture(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  return { log: pino({ level }, sink), lines };
}

const problem = (code: string, status: number, app?: string): HttpProblem => ({ status, code, title: code, message: `${code} for ${app ?? '-'}`, detail: 'task abc123 exited (3)', app, retryAfterSeconds: undefined });

t.test('one error line per app and code per window; the next says how many were held back', async (t) => {
  const { log, lines } = capture();
  const limiter = new ProblemLog({ errorWindowMs: 200 });
  for (let i = 0; i < 50; i++) limiter.write(log, problem('SA_APP_FAILED', 502, 'shop'), {});
  limiter.write(log, problem('SA_WAKE_TIMEOUT', 504, 'shop'), {});
  limiter.write(log, problem('SA_APP_FAILED', 502, 'blog'), {});
  t.equal(lines.filter((l) => l.level === 50).length, 3, 'three error lines for 52 failures: one per app and code');
  t.equal(lines[0]?.detail, 'task abc123 exited (3)', 'the detail is in the log line');
  await new Promise((r) => setTimeout(r, 250));
  limiter.write(log, problem('SA_APP_FAILED', 502, 'shop'), {});
  const last = lines.at(-1);
  t.equal(last?.heldBack, 49, 'the next window names the 49 held back');
  t.match(String(last?.msg), /49 more like it held back/);
});

t.test('unknown Hosts: one line per Host per window, at most maxKeys Hosts', async (t) => {
  const { log, lines } = capture();
  const limiter = new ProblemLog({ maxKeys: 10 });
  for (let i = 0; i < 1000; i++) limiter.write(log, problem('SA_UNKNOWN_HOST', 404), { host: `h${i % 100}.example` });
  t.equal(lines.length, 10, '10 lines for 1,000 requests over 100 Hosts');
});

t.test('at debug level the lines held back are written at debug, with the same fields', async (t) => {
  const { log, lines } = capture('debug');
  const limiter = new ProblemLog();
  for (let i = 0; i < 3; i++) limiter.write(log, problem('SA_UNKNOWN_HOST', 404), { host: 'nobody.example', url: '/x' });
  for (let i = 0; i < 2; i++) limiter.write(log, problem('SA_APP_FAILED', 502, 'shop'), { host: 'shop.example' });
  t.same(
    lines.map((l) => [l.level, l.code, l.status, l.host]),
    [
      [30, 'SA_UNKNOWN_HOST', 404, 'nobody.example'],
      [20, 'SA_UNKNOWN_HOST', 404, 'nobody.example'],
      [20, 'SA_UNKNOWN_HOST', 404, 'nobody.example'],
      [50, 'SA_APP_FAILED', 502, 'shop.example'],
      [20, 'SA_APP_FAILED', 502, 'shop.example'],
    ],
  );
  t.equal(lines[0]?.url, '/x', 'the caller\'s fields are in the line');
  t.equal(lines[3]?.app, 'shop');
  t.equal(lines[3]?.detail, 'task abc123 exited (3)');
});
