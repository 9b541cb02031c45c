/**
 * A real browser for page tests: Debian's chromium driven by playwright-core (no browser download).
 * The flags keep it off the network: on this closed network its background services would only
 * fail and slow it down.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.SA_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where a test's screenshot goes: docs/<name> with SA_UPDATE_SCREENSHOTS=1 (to refresh the ones the
 * README shows), else build/screenshots/<name>, so a test run leaves the checkout as it was.
 */
export function screenshotPath(name: string): string {
  const dir = process.env.SA_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs') : join(ROOT, 'build', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
