/**
 * CLI output manners: progress lines (plain off a terminal, live on one), stdout only for the
 * result, and a closed pipe ending the CLI quietly (real pipes, real child processes).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createOutput } from '../../../src/cli/common.js';
import { createProgress, isInteractive } from '../../../src/cli/progress.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
/** What the live line starts with: carriage return, then "erase the line" (ESC [2K). */
const CLEAR = `\r${String.fromCharCode(27)}[2K`;

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (c: string) => chunks.push(c), text: () => chunks.join('') };
}

t.test('off a terminal: each progress line once, as is, on stderr; the result alone on stdout', async (t) => {
  const stdout = sink(false);
  const stderr = sink(false);
  const out = createOutput({ json: true }, { stdout, stderr }, {});
  out.progress('deploying stack shop-mr-7 (2 services)');
  out.progress('shop-mr-7_web: 0/0 running');
  out.warn('something odd');
  out.result('human', { stack: 'shop-mr-7' });
  t.equal(stderr.text(), '  deploying stack shop-mr-7 (2 services)\n  shop-mr-7_web: 0/0 running\nwarning: something odd\n');
  t.same(JSON.parse(stdout.text()), { stack: 'shop-mr-7' }, 'stdout is exactly the JSON');
  t.notOk(stderr.text().includes('\r') || stderr.text().includes(String.fromCharCode(27)), 'no control characters in logs');
});

t.test('--quiet: no progress at all', async (t) => {
  const stderr = sink(true);
  const out = createOutput({ quiet: true }, { stdout: sink(false), stderr }, { TERM: 'xterm' });
  out.progress('waiting');
  out.end();
  t.equal(stderr.text(), '');
});

t.test('on a terminal: the current line is redrawn with a spinner and its seconds, then frozen', async (t) => {
  const stderr = sink(true);
  let now = 1000;
  const p = createProgress(stderr, { interactive: true, intervalMs: 5, now: () => now });
  p.line('shop-mr-7_web: 0/1 running, newest task preparing');
  now += 1500;
  await new Promise((r) => setTimeout(r, 30)); // a few redraws
  p.line('shop-mr-7_web: 1/1 running');
  p.end();
  const text = stderr.text();
  const drawn = text.split(CLEAR);
  t.ok(drawn.some((d) => /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] shop-mr-7_web: 0\/1 running, newest task preparing \(1\.5s\)$/.test(d)), 'live line with elapsed seconds');
  t.ok(drawn.includes('  shop-mr-7_web: 0/1 running, newest task preparing\n'), 'frozen as a plain line when the next one comes');
  t.ok(text.endsWith(`${CLEAR}  shop-mr-7_web: 1/1 running\n`), 'the last line frozen at the end, nothing left spinning');
  const redraws = text.split('newest task preparing (').length - 1;
  t.ok(redraws >= 2, `redrawn while waiting (${redraws} times)`);
  const before = stderr.chunks.length;
  await new Promise((r) => setTimeout(r, 20));
  t.equal(stderr.chunks.length, before, 'no redraw after end()');
});

t.test('interactive only on a TTY that can redraw', async (t) => {
  t.equal(isInteractive({ write: () => 0, isTTY: true }, { TERM: 'xterm-256color' }), true);
  t.equal(isInteractive({ write: () => 0, isTTY: true }, { TERM: 'dumb' }), false);
  t.equal(isInteractive({ write: () => 0 }, { TERM: 'xterm' }), false);
});

/** Runs a shell pipeline; resolves with its exit code (pipefail off: the last command's). */
function sh(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { cwd: ROOT, env: { ...process.env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const CLI = `'${process.execPath}' --import tsx src/cli/main.ts`;

t.test('a closed pipe ends the CLI quietly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sa-pipe-'));
  const help = await sh(`${CLI} deploy --help 2>'${dir}/help.err' | head -1; echo "cli=\${PIPESTATUS[0]}" >&2`);
  t.equal(help.stdout, 'Usage: swarm-activator deploy [options] <stack-file>\n');
  t.equal(readFileSync(join(dir, 'help.err'), 'utf8'), '', 'nothing on stderr');
  t.match(help.stderr, /^cli=(0|141)$/m, 'exit 0, or 141 as a program ended by SIGPIPE (git, docker)');

  // A listing far larger than a pipe's buffer (64 KiB), so the write meets the closed pipe.
  const services = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`web${i}`, { image: 'nginx:1', expose: ['80'] }]));
  writeFileSync(join(dir, 'big.yml'), JSON.stringify({ name: 'big', services }));
  const big = await sh(`${CLI} labels '${dir}/big.yml' --env mr-1 --domain example.com 2>'${dir}/big.err' | head -1; echo "cli=\${PIPESTATUS[0]}" >&2`);
  t.match(big.stdout, /^# swarm-activator: stack big-mr-1/);
  t.equal(readFileSync(join(dir, 'big.err'), 'utf8'), '', 'no EPIPE stack trace');
  t.match(big.stderr, /^cli=141$/m, 'ended by the closed pipe');

  const full = await sh(`${CLI} labels '${dir}/big.yml' --env mr-1 --domain example.com 2>/dev/null | wc -c`);
  t.ok(Number(full.stdout.trim()) > 65536, `the listing is larger than a pipe buffer (${full.stdout.trim()} bytes)`);
});
