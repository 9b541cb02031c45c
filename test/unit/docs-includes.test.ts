/** Files the docs show verbatim (<!-- include: PATH --> blocks) match the files: no drifting copies. */
import t from 'tap';
// @ts-expect-error: a plain .mjs script without types
import { checkDoc, DOCS } from '../../scripts/docs-includes.mjs';

interface Block { doc: string; path: string; same: boolean }

t.test('every include block shows its file exactly', async (t) => {
  const blocks = (DOCS as string[]).flatMap((doc) => (checkDoc(doc) as { blocks: Block[] }).blocks);
  t.ok(blocks.some((b) => b.path === 'examples/gitlab-ci/.gitlab-ci.yml'), 'docs/deploy.md shows the GitLab CI example');
  for (const b of blocks) t.ok(b.same, `${b.doc}: ${b.path} (fix: node scripts/docs-includes.mjs --write)`);
});
