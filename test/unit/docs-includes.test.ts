/** Files the docs show verbatim (<!-- include: PATH --> blocks) match the files: no drifting copies. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..', '..');

t.test('every include block shows its file exactly', async (t) => {
  t.match(readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8'), /<!-- include: examples\/gitlab-ci\/\.gitlab-ci\.yml -->/, 'docs/deploy.md shows the GitLab CI example');
  const check = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile(process.execPath, [join(ROOT, 'scripts', 'docs-includes.mjs')], { cwd: ROOT }, (err, stdout) => resolve({ code: err ? 1 : 0, out: stdout })),
  );
  t.equal(check.out, '', 'no block differs from its file');
  t.equal(check.code, 0, 'fix with: node scripts/docs-includes.mjs --write');
});
