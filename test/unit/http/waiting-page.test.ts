/** The waiting page: what it shows, template placeholders (escaped), and the template folder boundary. */
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import { fillTemplate, readTemplate, WaitingPages } from '../../../src/http/waiting-page.js';
import { LABELS, parsePolicy } from '../../../src/labels.js';
import { WakeHistory } from '../../../src/wake/wake-history.js';
import { entry } from '../../helpers/idle-fakes.js';

const defaults = { strategy: 'waiting-page' as const, wakeTimeoutMs: 60_000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: undefined };

function pages(dir?: string, logged: string[] = []) {
  const history = new WakeHistory();
  const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  return { history, pages: new WaitingPages({ history, templateDir: dir, waitPath: '/__activator/wait', retrySeconds: 2, log }) };
}

t.test('the default page shows the public Host, the elapsed time and the usual wake time, never the service name', async (t) => {
  const { history, pages: p } = pages();
  for (const ms of [2000, 3000, 4000]) {
    history.started('shop-pr-42_web', 'r');
    history.finished('shop-pr-42_web', { ms, outcome: 'ready', cold: true });
  }
  history.started('shop-pr-42_web', 'request', Date.now() - 1500);
  const html = await p.render(entry('shop-pr-42_web'), 'shop.pr-42.example.com');
  t.match(html, /Waking up <b>shop\.pr-42\.example\.com<\/b>/);
  t.notMatch(html, /shop-pr-42_web/, 'the internal service name is not on the page');
  t.match(html, /<span data-sa="elapsed">1\.[5-9] s<\/span>/, 'elapsed so far');
  t.match(html, /usually takes about 3\.0 s/, 'median of the recent wakes');
  t.match(html, /"usualMs":3000/, 'the script knows it too');
  t.match(html, /fetch\(d\.waitPath/, 'polls the wait path');

  const fresh = await pages().pages.render(entry('other'), 'other.example.com');
  t.notMatch(fresh, /usually takes/, 'no recent wakes: no usual time claimed');
});

t.test('placeholders: values escaped, unknown names shown as they are', async (t) => {
  const out = fillTemplate('<h1 title="{{host}}">{{ host }}</h1>{{usualWake}}|{{nope}}|{{constructor}}', { host: '<img src=x onerror=alert(1)>"', elapsedMs: 0, usualMs: 2500 });
  t.equal(out, '<h1 title="&lt;img src=x onerror=alert(1)&gt;&quot;">&lt;img src=x onerror=alert(1)&gt;&quot;</h1>about 2.5 s|{{nope}}|{{constructor}}');
});

t.test('a label-chosen template from the folder, with the script added before </body>', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sa-tpl-'));
  writeFileSync(join(dir, 'acme.html'), '<html><body><h1>ACME: {{host}}</h1><p data-sa="elapsed">{{elapsed}}</p></body></html>');
  const { pages: p } = pages(dir);
  const html = await p.render(entry('web', { waitingPageTemplate: 'acme.html' }), 'acme.example.com');
  t.match(html, /^<html><body><h1>ACME: acme\.example\.com<\/h1>/);
  t.match(html, /<script>[\s\S]*<\/script><\/body><\/html>$/, 'script before </body>');
});

t.test('template names are plain file names and files stay inside the folder', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sa-tpl-'));
  const dir = join(root, 'templates');
  mkdirSync(dir);
  writeFileSync(join(root, 'secret.html'), 'SECRET');
  writeFileSync(join(dir, 'ok.html'), 'fine');
  symlinkSync(join(root, 'secret.html'), join(dir, 'escape.html'));
  writeFileSync(join(dir, 'big.html'), 'x'.repeat(70 * 1024));
  t.equal(await readTemplate(dir, 'ok.html'), 'fine');
  await t.rejects(readTemplate(dir, '../secret.html'), /not a plain \.html file name/);
  await t.rejects(readTemplate(dir, '/etc/passwd'), /not a plain/);
  await t.rejects(readTemplate(dir, 'escape.html'), /resolves outside/, 'a symlink out of the folder is refused');
  await t.rejects(readTemplate(dir, 'big.html'), /larger than/);
  await t.rejects(readTemplate(undefined, 'ok.html'), /ACTIVATOR_WAITING_PAGE_DIR is not set/);

  // The label is checked at discovery, naming the label.
  for (const bad of ['../x.html', '/etc/passwd', 'a/b.html', 'x.txt', '.hidden.html', 'a..b.html']) {
    const r = parsePolicy({ id: 'i', name: 'web', labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.test', [LABELS.port]: '80', [LABELS.waitingPageTemplate]: bad } }, defaults);
    t.equal(r.ok ? undefined : r.errors[0]?.label, LABELS.waitingPageTemplate, `label "${bad}" refused`);
  }
  const ok = parsePolicy({ id: 'i', name: 'web', labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'web.test', [LABELS.port]: '80', [LABELS.waitingPageTemplate]: 'acme.v2.html' } }, defaults);
  t.equal(ok.ok && ok.policy.waitingPageTemplate, 'acme.v2.html');

  // A template that cannot be used: the default page, one error line naming it.
  const logged: string[] = [];
  const { pages: p } = pages(dir, logged);
  const html = await p.render(entry('web', { waitingPageTemplate: 'escape.html' }), 'web.test');
  t.notMatch(html, /SECRET/);
  t.match(html, /Waking up <b>web\.test<\/b>/, 'the default page instead');
  await p.render(entry('web', { waitingPageTemplate: 'missing.html' }), 'web.test');
  t.equal(logged.length, 2);
  t.match(logged[0], /waiting-page template \\"escape\.html\\" not used/);
});
