/**
 * The "waking up" page for browsers (strategy waiting-page). It shows the app's public Host, the
 * time elapsed and the app's usual wake time (its recent wakes), and long-polls <prefix>/wait on
 * the same Host, reloading when that answers: 204 from the activator once the app is ready, or any
 * answer from the app itself once Traefik routes to it directly.
 *
 * Themes: the label swarm-activator.waiting-page.template names an .html file in
 * ACTIVATOR_WAITING_PAGE_DIR (a file name only; never a path). Placeholders are `{{name}}` with
 * the names in PLACEHOLDERS, each replaced by its HTML-escaped value; the activator's script is
 * added before </body>. Elements with data-sa="elapsed" / data-sa="error" are filled in live.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Logger } from 'pino';
import type { AppEntry } from '../discovery/app-registry.js';
import { TEMPLATE_FILE_NAME } from '../labels.js';
import type { WakeHistory } from '../wake/wake-history.js';
import { escapeHtml } from './error-page.js';

/** A template larger than this is refused (it is read into memory and sent with every page). */
export const MAX_TEMPLATE_BYTES = 64 * 1024;
/** How long a read template is reused before its file is looked at again. */
const TEMPLATE_CACHE_MS = 5000;

export interface WaitingPageValues {
  /** The public Host the visitor asked for. */
  host: string;
  /** Time the wake has already taken when the page is rendered. */
  elapsedMs: number;
  /** Median of the app's recent cold wakes; undefined before the first. */
  usualMs: number | undefined;
}

/** Placeholder name → its text for these values (escaped by render). */
export const PLACEHOLDERS: Record<string, (v: WaitingPageValues) => string> = {
  host: (v) => v.host,
  elapsed: (v) => formatSeconds(v.elapsedMs),
  usualWake: (v) => (v.usualMs === undefined ? '' : `about ${formatSeconds(v.usualMs)}`),
  usualWakeMs: (v) => (v.usualMs === undefined ? '' : String(Math.round(v.usualMs))),
};

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

/** Replaces every {{name}} (spaces allowed inside the braces) by its escaped value; unknown names stay visible. */
export function fillTemplate(template: string, values: WaitingPageValues): string {
  return template.replace(/\{\{\s*([A-Za-z]+)\s*\}\}/g, (whole, name: string) => {
    const value = Object.hasOwn(PLACEHOLDERS, name) ? PLACEHOLDERS[name] : undefined;
    return value ? escapeHtml(value(values)) : escapeHtml(whole);
  });
}

/** The script every waiting page gets: live elapsed time, poll, reload. */
function pageScript(waitPath: string, values: WaitingPageValues): string {
  // JSON inside <script>: escape "<" so no value can close the element.
  const data = JSON.stringify({ waitPath, elapsedMs: Math.round(values.elapsedMs), usualMs: values.usualMs ?? null }).replace(/</g, '\\u003c');
  return `<script>
(function () {
  var d = ${data}, t0 = performance.now();
  function each(name, fn) { document.querySelectorAll('[data-sa="' + name + '"]').forEach(fn); }
  function secs(ms) { var s = ms / 1000; return s < 10 ? s.toFixed(1) + ' s' : Math.round(s) + ' s'; }
  var tick = setInterval(function () {
    var ms = d.elapsedMs + performance.now() - t0;
    each('elapsed', function (e) { e.textContent = secs(ms); });
    if (d.usualMs && ms > 2 * d.usualMs + 2000) each('slow', function (e) { e.hidden = false; });
  }, 100);
  (function poll(attempt) {
    fetch(d.waitPath, { cache: 'no-store' }).then(function (r) {
      var err = r.headers.get('x-activator-error');
      if (!err) return location.reload();
      if (err === 'SA_WAKE_TIMEOUT' || err === 'SA_APP_FAILED') {
        clearInterval(tick);
        return r.json().then(function (b) { each('error', function (e) { e.textContent = b.message; e.hidden = false; }); });
      }
      setTimeout(function () { poll(attempt + 1); }, 1000);
    }, function () { setTimeout(function () { poll(attempt + 1); }, Math.min(5000, 500 * (attempt + 1))); });
  })(0);
})();
</script>`;
}

const DEFAULT_TEMPLATE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Waking up {{host}}…</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0;color:#333;background:#fafafa}
main{text-align:center;max-width:34rem;padding:2rem}
.s{width:2rem;height:2rem;border:3px solid #ddd;border-top-color:#555;border-radius:50%;animation:r 1s linear infinite;margin:1rem auto}
@keyframes r{to{transform:rotate(1turn)}}
.m{color:#666;font-size:.9rem}.e{color:#a00}</style></head>
<body><main><div class="s"></div><p>Waking up <b>{{host}}</b>. This page reloads when it is ready.</p>
<p class="m">Waiting for <span data-sa="elapsed">{{elapsed}}</span><span data-sa="usual">{{usualText}}</span>.</p>
<p class="m" data-sa="slow" hidden>This is taking longer than usual.</p>
<p class="e" data-sa="error" hidden></p></main></body></html>`;

export interface WaitingPagesOptions {
  history: Pick<WakeHistory, 'inProgress' | 'usualMs'> | undefined;
  /** ACTIVATOR_WAITING_PAGE_DIR; undefined: the template label is ignored (with a log line). */
  templateDir: string | undefined;
  waitPath: string;
  retrySeconds: number;
  log: Logger;
}

interface CachedTemplate {
  text: string | undefined;
  readAt: number;
}

export class WaitingPages {
  private readonly cache = new Map<string, CachedTemplate>();
  private readonly lastProblemLog = new Map<string, number>();

  constructor(private readonly options: WaitingPagesOptions) {}

  /** The page for a visitor of `host` while `entry` wakes (the wake has been started). */
  async render(entry: AppEntry, host: string): Promise<string> {
    const service = entry.policy.service;
    const wake = this.options.history?.inProgress(service);
    const values: WaitingPageValues = { host, elapsedMs: wake ? Math.max(0, Date.now() - wake.at) : 0, usualMs: this.options.history?.usualMs(service) };
    const name = entry.policy.waitingPageTemplate;
    const custom = name ? await this.template(name, service) : undefined;
    const html = custom !== undefined ? fillTemplate(custom, values) : fillTemplate(DEFAULT_TEMPLATE.replace('{{usualText}}', values.usualMs === undefined ? '' : '; it usually takes {{usualWake}}'), values);
    const script = pageScript(this.options.waitPath, values);
    const noscript = `<noscript><meta http-equiv="refresh" content="${this.options.retrySeconds}"></noscript>`;
    const at = html.search(/<\/body>/i);
    return at >= 0 ? `${html.slice(0, at)}${noscript}${script}${html.slice(at)}` : `${html}${noscript}${script}`;
  }

  /** The template's text, or undefined (default page) when it cannot be used; problems logged once a minute. */
  private async template(name: string, service: string): Promise<string | undefined> {
    const cached = this.cache.get(name);
    if (cached && Date.now() - cached.readAt < TEMPLATE_CACHE_MS) return cached.text;
    let text: string | undefined;
    try {
      text = await readTemplate(this.options.templateDir, name);
    } catch (err) {
      this.problem(name, service, (err as Error).message);
    }
    this.cache.set(name, { text, readAt: Date.now() });
    if (this.cache.size > 256) this.cache.delete(this.cache.keys().next().value as string);
    return text;
  }

  private problem(name: string, service: string, message: string): void {
    const last = this.lastProblemLog.get(name) ?? 0;
    if (Date.now() - last < 60_000) return;
    this.lastProblemLog.set(name, Date.now());
    if (this.lastProblemLog.size > 256) this.lastProblemLog.delete(this.lastProblemLog.keys().next().value as string);
    this.options.log.error({ app: service, template: name }, `waiting-page template "${name}" not used (default page instead): ${message}`);
  }
}

/**
 * Reads <dir>/<name>. The name is checked again here (never a path), and the file's real path
 * must stay inside the folder's real path (no symlink out of it).
 */
export async function readTemplate(dir: string | undefined, name: string): Promise<string> {
  if (!dir) throw new Error('ACTIVATOR_WAITING_PAGE_DIR is not set');
  if (name.length > 100 || !TEMPLATE_FILE_NAME.test(name)) throw new Error('not a plain .html file name');
  const root = await realpath(dir);
  const file = await realpath(join(root, name));
  if (!file.startsWith(root + sep)) throw new Error(`resolves outside ${dir}`);
  const info = await stat(file);
  if (!info.isFile()) throw new Error('not a file');
  if (info.size > MAX_TEMPLATE_BYTES) throw new Error(`larger than ${MAX_TEMPLATE_BYTES} bytes`);
  return readFile(file, 'utf8');
}
