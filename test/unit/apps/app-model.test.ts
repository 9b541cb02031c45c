/** parseApp (labels → AppModel) and the structured state labels, read back by the reaper and savings. */
import t from 'tap';
import pino from 'pino';
import { parseApp } from '../../../src/apps/parse-app.js';
import { readState, stateLabels } from '../../../src/apps/state.js';
import { AppRegistry } from '../../../src/discovery/app-registry.js';
import { DEFAULT_POLICY, LABELS, hostsFromLabels } from '../../../src/labels.js';
import { asleepSince } from '../../../src/savings/savings.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';

const seedApp = {
  [LABELS.enable]: 'true',
  'traefik.http.routers.shop-http.rule': 'Host(`shop.example.com`)',
  'traefik.http.routers.shop-http.entrypoints': 'http',
  'traefik.http.routers.shop-http.middlewares': 'auth,non-www-redirect-secure@swarm',
  'traefik.http.routers.Shop-Https.rule': 'Host(`shop.example.com`)',
  'traefik.http.routers.shop-https.tls.certresolver': 'le',
  'traefik.http.middlewares.auth.basicauth.users': 'u:$apr1$x$y',
  'traefik.http.services.shop.loadbalancer.server.port': '8000',
};

t.test('parseApp: policy, routers, own middlewares and state from one parse', async (t) => {
  const at = new Date('2026-12-01T10:00:00.000Z');
  const result = parseApp({ id: 'id1', name: 'shop_web', labels: { ...seedApp, ...stateLabels('slept', 'idle for 30m', at) } }, DEFAULT_POLICY);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  const { app } = result;
  t.same(app.policy.hosts, ['shop.example.com']);
  t.equal(app.policy.port, 8000);
  t.same(app.policy.traefikServices, ['shop']);
  t.same(app.routers.map((r) => [r.name, r.middlewares, r.tls?.certResolver]), [
    ['Shop-Https', [], 'le'],
    ['shop-http', ['auth', 'non-www-redirect-secure@swarm'], undefined],
  ], 'shop-https and Shop-Https are one router');
  t.same(app.middlewares, [{ name: 'auth', type: 'basicAuth', options: { users: 'u:$apr1$x$y' }, definedOn: 'shop_web' }]);
  t.same(app.state, { since: at.getTime(), kind: 'slept', detail: 'idle for 30m' });
});

t.test('parseApp with broken labels still reports routers and state', async (t) => {
  const result = parseApp({ id: 'id1', name: 'web', labels: { 'traefik.http.routers.web.rule': 'Host(`web.example.com`)', [LABELS.idleTimeout]: 'soon' } }, DEFAULT_POLICY);
  t.equal(result.ok, false);
  if (result.ok) return;
  t.same(result.errors.map((e) => e.label).sort(), [LABELS.idleTimeout, LABELS.port].sort());
  t.equal(result.app.routers[0]?.rule, 'Host(`web.example.com`)');
  t.equal(result.app.state, undefined);
});

t.test('Traefik label keys match case-insensitively for the policy too, as Traefik reads them', async (t) => {
  const labels = { 'traefik.http.routers.Web.Rule': 'Host(`a.example.com`)', 'traefik.http.services.web.LoadBalancer.Server.Port': '81' };
  t.same(hostsFromLabels(labels), ['a.example.com']);
  const result = parseApp({ id: 'x', name: 'web', labels }, DEFAULT_POLICY);
  t.equal(result.ok && result.app.policy.port, 81);
});

t.test('state labels: the kind is its own label, the reason is bounded free text', async (t) => {
  const labels = stateLabels('woken', `woken: request for ${'x'.repeat(300)}`, new Date('2026-12-01T10:00:00.000Z'));
  t.equal(labels[LABELS.stateKind], 'woken');
  t.equal(labels[LABELS.stateSince], '2026-12-01T10:00:00.000Z');
  t.equal(labels[LABELS.stateReason]?.length, 200);
  t.equal(readState(labels)?.kind, 'woken');
});

t.test('the kind is read from its label, never from the reason text', async (t) => {
  const since = '2026-12-01T10:00:00.000Z';
  // A reason that starts with "woken" but a kind that says otherwise: the kind wins.
  const slept = { [LABELS.stateSince]: since, [LABELS.stateKind]: 'slept', [LABELS.stateReason]: 'woken-up app went idle' };
  t.equal(readState(slept)?.kind, 'slept');
  t.equal(asleepSince(slept, 0, 0), Date.parse(since), 'asleep since the scale-down');
  const woken = { [LABELS.stateSince]: since, [LABELS.stateKind]: 'woken', [LABELS.stateReason]: 'ops API' };
  t.equal(asleepSince(woken, 0, 0), undefined, 'woken: not asleep, whatever the reason says');
});

t.test('labels written before state.kind existed are read by their reason', async (t) => {
  const since = '2026-12-01T10:00:00.000Z';
  const kind = (reason: string) => readState({ [LABELS.stateSince]: since, [LABELS.stateReason]: reason })?.kind;
  t.equal(kind('woken: request for a.example.com'), 'woken');
  t.equal(kind('woken with group shop: request'), 'woken');
  t.equal(kind('idle for 30m'), 'slept');
  t.equal(kind('wake failed: SA_WAKE_TIMEOUT'), 'slept');
  t.equal(kind('deployed asleep (cli)'), 'deployed');
  t.equal(kind('manual wake (cli)'), 'manual');
  t.equal(readState({ [LABELS.stateSince]: since, [LABELS.stateKind]: 'bogus', [LABELS.stateReason]: 'woken: x' })?.kind, 'woken', 'an unknown kind falls back too');
  t.equal(readState({ [LABELS.stateReason]: 'woken: x' }), undefined, 'no since: no state');
  t.equal(readState({ [LABELS.stateSince]: 'yesterday', [LABELS.stateReason]: 'woken: x' }), undefined, 'unreadable since: no state');
});

t.test('the registry keeps the model: entries carry routers, middlewares and state', async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('shop_web', { ...seedApp, ...stateLabels('woken', 'woken: request', new Date('2026-12-01T10:00:00.000Z')) });
  const registry = new AppRegistry({ swarm, defaults: DEFAULT_POLICY, resyncIntervalMs: 60_000, log: pino({ level: 'silent' }) });
  await registry.start();
  t.teardown(() => registry.stop());
  const entry = registry.byHost('shop.example.com');
  t.equal(entry?.routers.length, 2);
  t.equal(entry?.middlewares[0]?.type, 'basicAuth');
  t.equal(entry?.state?.kind, 'woken');
});
