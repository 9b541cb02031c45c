#!/usr/bin/env node
// Files shown verbatim in the docs, between
//   <!-- include: PATH -->  ```lang  …  ```  <!-- end include -->
// (PATH relative to the repository root), so the docs show the real file rather than a copy that
// drifts. `node scripts/docs-includes.mjs` lists the blocks that differ from their file (exit 1);
// `--write` rewrites them from the files. test/unit/docs-includes.test.ts runs the check.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DOCS = ['README.md', 'docs/deploy.md'];
const BLOCK = /(<!-- include: (\S+) -->\n```(\w*)\n)([\s\S]*?)(```\n<!-- end include -->)/g;

/** Every include block of a doc: the file it shows, and whether it shows it exactly. */
export function checkDoc(doc) {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const blocks = [];
  const updated = text.replace(BLOCK, (_all, open, path, _lang, body, close) => {
    const file = readFileSync(join(ROOT, path), 'utf8');
    blocks.push({ doc, path, same: body === file });
    return `${open}${file}${close}`;
  });
  return { blocks, updated, changed: updated !== text };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const write = process.argv.includes('--write');
  let stale = 0;
  for (const doc of DOCS) {
    const { blocks, updated, changed } = checkDoc(doc);
    for (const b of blocks) if (!b.same) { stale++; console.log(`${doc}: the block showing ${b.path} differs from the file`); }
    if (write && changed) writeFileSync(join(ROOT, doc), updated);
  }
  if (stale > 0 && !write) {
    console.log('run: node scripts/docs-includes.mjs --write');
    process.exit(1);
  }
}
