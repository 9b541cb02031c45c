/**
 * Sablier side by side (issue 14 §1). The peer is built by `scripts/tools.sh sablier` (pinned to its
 * latest release, from the Go module proxy). When that build fails, this part records why (the
 * tool's own error) and the rest of the bench goes on; the comparison itself only runs with a
 * built Sablier, which this workplace has never had (the proxy refuses the module), so it is not
 * written yet rather than written untested.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface PeerResult {
  activatorP50Ms: null;
  activatorP95Ms: null;
  sablierP50Ms: null;
  sablierP95Ms: null;
  ratioP50: null;
  idleAccuracy: null;
  sablierVersion: string;
  built: boolean;
  reason: string;
}

function tools(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['scripts/tools.sh', ...args], { timeout: 600_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}`.trim() });
    });
  });
}

export async function peer(opts: { log: (line: string) => void }): Promise<PeerResult> {
  const version = /^SA_SABLIER_VERSION=(\S+)/m.exec(readFileSync('scripts/tools.sh', 'utf8'))?.[1] ?? 'unknown';
  const built = await tools(['sablier']);
  const reason = built.code === 0
    ? 'Sablier built, but the side-by-side cycles are not implemented yet (never had a Sablier binary to test them against)'
    : `scripts/tools.sh sablier failed: ${built.out.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join(' | ').replace(/https?:\/\/[^/\s]+/g, '<the Go module proxy>')}`;
  opts.log(`  peer: Sablier ${version}: ${built.code === 0 ? 'built' : 'not built'}: ${reason}`);
  return { activatorP50Ms: null, activatorP95Ms: null, sablierP50Ms: null, sablierP95Ms: null, ratioP50: null, idleAccuracy: null, sablierVersion: version, built: built.code === 0, reason };
}
