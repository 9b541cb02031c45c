import t from 'tap';
import { hostsFromRule, isValidHostname, normaliseName } from '../../src/traefik-rule.js';

t.test('hosts from Traefik router rules', async (t) => {
  t.same(hostsFromRule('Host(`vista.doc.endevel.cz`)'), ['vista.doc.endevel.cz'], 'the seed rule');
  t.same(hostsFromRule('Host(`a.example.com`) || Host(`b.example.com`)'), ['a.example.com', 'b.example.com']);
  t.same(hostsFromRule('Host(`a.example.com`, `b.example.com`)'), ['a.example.com', 'b.example.com'], 'v2 multi-argument form');
  t.same(hostsFromRule('Host("Quoted.Example.com") && PathPrefix(`/api`)'), ['quoted.example.com'], 'double quotes, lower-cased');
  t.same(hostsFromRule('(Host(`a.x`) && Path(`/`)) || (Host(`b.x`) && Method(`GET`))'), ['a.x', 'b.x']);
  t.same(hostsFromRule('HostRegexp(`^.+\\.example\\.com$`)'), [], 'HostRegexp is not an exact host');
  t.same(hostsFromRule('HostSNI(`*`)'), [], 'HostSNI is TCP, not HTTP');
  t.same(hostsFromRule('PathPrefix(`/`)'), []);
});

t.test('Traefik name normalisation', async (t) => {
  t.equal(normaliseName('pr-42_web'), 'pr-42-web');
  t.equal(normaliseName('app.env__svc'), 'app-env-svc');
});

t.test('DNS host validation', async (t) => {
  t.ok(isValidHostname('vista.doc.endevel.cz'));
  t.ok(isValidHostname('pr-42.preview.example.com'));
  t.notOk(isValidHostname('-bad.example.com'));
  t.notOk(isValidHostname('bad_.example.com'));
  t.notOk(isValidHostname('a..b'));
  t.notOk(isValidHostname(`${'a'.repeat(64)}.com`));
  t.notOk(isValidHostname(''));
});
