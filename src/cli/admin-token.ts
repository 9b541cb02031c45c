/**
 * The admin API token for commands that talk to the activator: --token-file, else
 * SWARM_ACTIVATOR_TOKEN_FILE, else SWARM_ACTIVATOR_TOKEN (the value itself, e.g. a CI variable).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError } from '../deploy/errors.js';

export interface TokenFlags {
  tokenFile?: string;
}

export function withTokenOption(cmd: Command): Command {
  return cmd.option('--token-file <path>', "file holding the activator's admin token (else SWARM_ACTIVATOR_TOKEN_FILE or SWARM_ACTIVATOR_TOKEN)");
}

export function adminTokenFrom(flags: TokenFlags, env: NodeJS.ProcessEnv): string | undefined {
  const fromFile = (path: string, source: string) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new InvalidInputError(`${source}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const token = text.trim();
    if (token === '') throw new InvalidInputError(`${source}: ${path} is empty`);
    return token;
  };
  if (flags.tokenFile !== undefined) return fromFile(flags.tokenFile, '--token-file');
  const file = env.SWARM_ACTIVATOR_TOKEN_FILE?.trim();
  if (file) return fromFile(file, 'SWARM_ACTIVATOR_TOKEN_FILE');
  return env.SWARM_ACTIVATOR_TOKEN?.trim() || undefined;
}
