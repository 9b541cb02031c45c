import t from 'tap';
import { parsePrometheusText } from '../../../src/idle/prometheus-text.js';

// Lines as Traefik v3 serves them (prometheus client_golang, text format 0.0.4).
const TRAEFIK = `# HELP traefik_service_requests_total How many HTTP requests processed on a service, partitioned by status code, protocol, and method.
# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="whoami@swarm"} 12
traefik_service_requests_total{code="404",method="GET",protocol="http",service="whoami@swarm"} 3
traefik_service_requests_total{code="101",method="GET",protocol="websocket",service="chat-web@swarm"} 1
traefik_service_requests_total{code="200",method="POST",protocol="http",service="api@internal"} 7
# HELP traefik_service_open_connections How many open connections exist, by service and protocol.
traefik_config_reloads_total 4
`;

t.test('Traefik lines: names, labels, values', async (t) => {
  const samples = parsePrometheusText(TRAEFIK);
  t.equal(samples.length, 5);
  t.same(samples[0], { name: 'traefik_service_requests_total', labels: { code: '200', method: 'GET', protocol: 'http', service: 'whoami@swarm' }, value: 12 });
  t.same(samples[4], { name: 'traefik_config_reloads_total', labels: {}, value: 4 });
});

t.test('only the names asked for', async (t) => {
  const samples = parsePrometheusText(TRAEFIK, new Set(['traefik_config_reloads_total']));
  t.same(samples.map((s) => s.name), ['traefik_config_reloads_total']);
});

t.test('escapes, spaces, a trailing comma, timestamps, special values', async (t) => {
  const text = [
    'm{a="x\\"y",b="back\\\\slash",c="new\\nline",} 1.5e3 1700000000000',
    'm { a = "spaced" } 2',
    'm{a="curly } inside"} 3',
    'm{} NaN',
    'm +Inf',
    'm -Inf',
  ].join('\n');
  const s = parsePrometheusText(text);
  t.same(s[0]?.labels, { a: 'x"y', b: 'back\\slash', c: 'new\nline' });
  t.equal(s[0]?.value, 1500);
  t.same(s[1]?.labels, { a: 'spaced' });
  t.same(s[2]?.labels, { a: 'curly } inside' });
  t.ok(Number.isNaN(s[3]?.value));
  t.equal(s[4]?.value, Infinity);
  t.equal(s[5]?.value, -Infinity);
});

t.test('malformed lines are skipped, not fatal', async (t) => {
  const text = ['good 1', 'bad{a="unterminated} 1', 'bad{a=noquotes} 1', 'bad{a="x"', 'novalue', 'bad{a="1"} notanumber', '{a="x"} 1', 'also_good{x="1"} 2'].join('\n');
  t.same(parsePrometheusText(text).map((s) => [s.name, s.value]), [['good', 1], ['also_good', 2]]);
});

t.test('CRLF line endings', async (t) => {
  t.same(parsePrometheusText('a 1\r\nb{x="y"} 2\r\n').map((s) => s.value), [1, 2]);
});
