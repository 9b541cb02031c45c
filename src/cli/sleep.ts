/** `swarm-activator sleep <app>` (shares its implementation with wake). */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { scaleCommand } from './wake.js';

export function sleepCommand(ctx: CliContext): Command {
  return scaleCommand(ctx, 'sleep');
}
