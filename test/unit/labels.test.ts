import t from 'tap';
import { SEED_TRAEFIK_LABELS } from '../helpers/seed-labels.js';
import { LABELS, parsePolicy, parseStatusRanges, statusAccepted, type PolicyDefaults } from '../../src/labels.js';

const defaults: PolicyDefaults = { strategy: 'blocking', wakeTimeoutMs: 60_000, idleTimeoutMs: 1_800_000, minAwakeMs: 60_000, network: 'traefik-public' };

// The label set of shared/seed-labels.txt, plus our opt-in.
const seed: Record<string, string> = { ...SEED_TRAEFIK_LABELS, [LABELS.enable]: 'true' };

const svc = (labels: Record<string, string>) => ({ id: 'id1', name: 'vistacredit_web', labels });

t.test('the seed deployment: host, port and Traefik service come from its Traefik labels', async (t) => {
  const r = parsePolicy(svc(seed), defaults);
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.policy.hosts, ['vista.doc.endevel.cz']);
  t.equal(r.policy.port, 80);
  t.equal(r.policy.network, 'traefik-public', 'config default network');
  t.same(r.policy.traefikServices, ['vistacredit-web-develop']);
  t.equal(r.policy.replicas, 1);
  t.equal(r.policy.group, 'vistacredit_web', 'a service is its own group by default');
  t.equal(r.policy.strategy, 'blocking');
  t.equal(r.policy.idleTimeoutMs, 1_800_000);
  t.equal(r.policy.http, true);
});

t.test('activator labels override Traefik-derived values', async (t) => {
  const r = parsePolicy(
    svc({
      ...seed,
      [LABELS.hosts]: 'A.example.com, b.example.com',
      [LABELS.port]: '8000',
      [LABELS.replicas]: '2',
      [LABELS.group]: 'vista',
      [LABELS.strategy]: 'waiting-page',
      [LABELS.idleTimeout]: '10m',
      [LABELS.wakeTimeout]: '90s',
      [LABELS.probePath]: '/health',
      [LABELS.probeStatus]: '200-299',
      [LABELS.ready]: 'Healthy',
      'traefik.swarm.network': 'app-net',
    }),
    defaults,
  );
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.policy.hosts, ['a.example.com', 'b.example.com']);
  t.equal(r.policy.port, 8000);
  t.equal(r.policy.replicas, 2);
  t.equal(r.policy.group, 'vista');
  t.equal(r.policy.strategy, 'waiting-page');
  t.equal(r.policy.idleTimeoutMs, 600_000);
  t.equal(r.policy.wakeTimeoutMs, 90_000);
  t.equal(r.policy.network, 'app-net', 'traefik.swarm.network wins over the default');
  t.same(r.policy.probe, { path: '/health', statuses: [{ from: 200, to: 299 }] });
  t.equal(r.policy.readyWhen, 'healthy', 'ready=healthy keeps Swarm health as the rule');
  const plain = parsePolicy(svc(seed), defaults);
  t.equal(plain.ok && plain.policy.readyWhen, 'probe', 'by default the probe decides');
});

t.test('broken labels are reported with the label that caused them', async (t) => {
  const cases: Array<[string, Record<string, string>, RegExp, string]> = [
    ['bad duration', { ...seed, [LABELS.idleTimeout]: '10 minutes' }, /invalid duration/, LABELS.idleTimeout],
    ['zero wake timeout', { ...seed, [LABELS.wakeTimeout]: '0s' }, /longer than 0/, LABELS.wakeTimeout],
    ['no port', { [LABELS.enable]: 'true', [LABELS.hosts]: 'a.example.com' }, /no port/, LABELS.port],
    ['no host', { [LABELS.enable]: 'true', [LABELS.port]: '80' }, /no host/, LABELS.hosts],
    ['bad host', { ...seed, [LABELS.hosts]: 'bad_host!.example.com' }, /not a valid host name/, LABELS.hosts],
    ['port out of range', { ...seed, [LABELS.port]: '70000' }, /outside 1\.\.65535/, LABELS.port],
    ['bad strategy', { ...seed, [LABELS.strategy]: 'lazy' }, /not one of blocking, waiting-page/, LABELS.strategy],
    ['bad replicas', { ...seed, [LABELS.replicas]: 'two' }, /not a whole number/, LABELS.replicas],
    // Node's timers fire at once from 2^31 ms (24.8 days): such a timeout would mean "now".
    ['idle timeout past a timer', { ...seed, [LABELS.idleTimeout]: '25d' }, /longer than 2147483647 ms/, LABELS.idleTimeout],
    ['wake timeout past a timer', { ...seed, [LABELS.wakeTimeout]: '2147483648ms' }, /longer than 2147483647 ms/, LABELS.wakeTimeout],
    ['min-awake past a timer', { ...seed, [LABELS.minAwake]: '600h' }, /longer than 2147483647 ms/, LABELS.minAwake],
    ['replicas over the bound', { ...seed, [LABELS.replicas]: '1000000' }, /outside 1\.\.100/, LABELS.replicas],
    ['idle replicas over the bound', { ...seed, [LABELS.idleReplicas]: '101' }, /outside 0\.\.100/, LABELS.idleReplicas],
    ['bad probe path', { ...seed, [LABELS.probePath]: 'health' }, /must start with \//, LABELS.probePath],
    ['bad probe status', { ...seed, [LABELS.probeStatus]: '2xx' }, /invalid status/, LABELS.probeStatus],
    ['bad ready rule', { ...seed, [LABELS.ready]: 'soon' }, /not one of probe, healthy/, LABELS.ready],
    [
      'two Traefik ports',
      { ...seed, 'traefik.http.services.other.loadbalancer.server.port': '8080' },
      /several ports/,
      LABELS.port,
    ],
  ];
  for (const [name, labels, message, label] of cases) {
    const r = parsePolicy(svc(labels), defaults);
    t.notOk(r.ok, `${name}: rejected`);
    if (r.ok) continue;
    t.ok(r.errors.some((e) => e.label === label && message.test(e.message)), `${name}: names ${label} (${JSON.stringify(r.errors)})`);
  }
});

t.test('a group member with neither host nor port is a worker', async (t) => {
  const r = parsePolicy(svc({ [LABELS.enable]: 'true', [LABELS.group]: 'shop-pr-42' }), defaults);
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.policy.http, false);
  t.same(r.policy.hosts, []);
  t.equal(r.policy.group, 'shop-pr-42');
});

t.test('status ranges', async (t) => {
  t.same(parseStatusRanges('<500'), [{ from: 100, to: 499 }]);
  t.same(parseStatusRanges('200-399, 404'), [{ from: 200, to: 399 }, { from: 404, to: 404 }]);
  t.throws(() => parseStatusRanges('399-200'), /invalid status range/);
  t.ok(statusAccepted(404, parseStatusRanges('<500')));
  t.notOk(statusAccepted(503, parseStatusRanges('<500')));
});

t.test('the longest durations a timer holds are accepted', async (t) => {
  const r = parsePolicy(svc({ ...seed, [LABELS.idleTimeout]: '24d', [LABELS.wakeTimeout]: '2147483647ms' }), defaults);
  t.ok(r.ok);
  if (r.ok) t.equal(r.policy.idleTimeoutMs, 24 * 86_400_000);
});
