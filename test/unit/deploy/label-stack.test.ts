/**
 * Golden-file tests of the labeller: every directory under test/fixtures/deploy/ holds a stack.yml
 * and options.json; ok-* cases must produce expected.yml exactly, err-* cases expected-errors.txt.
 * Regenerate after an intended change with: UPDATE_GOLDEN=1 npx tap test/unit/deploy/label-stack.test.ts
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import YAML from 'yaml';
import { formatIssue, labelStack, type LabelStackOptions, type LabelledStack } from '../../../src/deploy/label-stack.js';
import { LABELS, parsePolicy } from '../../../src/labels.js';

const DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'deploy');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const BASE: Omit<LabelStackOptions, 'file'> = { env: 'mr-42', domain: 'preview.example.com' };

function runCase(name: string) {
  const text = readFileSync(join(DIR, name, 'stack.yml'), 'utf8');
  const options = JSON.parse(readFileSync(join(DIR, name, 'options.json'), 'utf8')) as Partial<LabelStackOptions>;
  return labelStack(text, { ...BASE, ...options, file: `${name}/stack.yml` });
}

function golden(t: Test, path: string, actual: string): void {
  if (UPDATE || !existsSync(path)) {
    writeFileSync(path, actual);
    if (!UPDATE) t.fail(`${path} did not exist; written — review it and run again`);
    return;
  }
  t.equal(actual, readFileSync(path, 'utf8'), `matches ${path.slice(DIR.length + 1)}`);
}

const cases = readdirSync(DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

t.test('golden cases', async (t) => {
  t.ok(cases.filter((c) => c.startsWith('ok-')).length >= 5 && cases.filter((c) => c.startsWith('err-')).length >= 8, 'fixtures present');
  for (const name of cases) {
    t.test(name, async (t) => {
      const result = runCase(name);
      const warnings = result.warnings.map(formatIssue).join('\n');
      if (name.startsWith('ok-')) {
        if (!result.ok) return t.fail(`unexpected errors:\n${result.errors.map(formatIssue).join('\n')}`);
        golden(t, join(DIR, name, 'expected.yml'), result.yaml + (warnings ? `# warnings:\n${warnings.replace(/^/gm, '#   ')}\n` : ''));
        // What we produce must parse back, and the activator must accept every managed service.
        const back = YAML.parse(result.yaml) as { name?: unknown; services: Record<string, Record<string, unknown>> };
        t.equal(back.name, undefined, 'top-level name removed (docker stack deploy rejects it)');
        for (const svc of Object.values(back.services)) t.notOk('x-swarm-activator' in svc, 'extension removed');
        for (const plan of result.services.filter((p) => p.role !== 'unmanaged')) {
          const policy = parsePolicy({ id: 'x', name: plan.swarmName, labels: plan.labels }, { strategy: 'blocking', wakeTimeoutMs: 1, idleTimeoutMs: 1, minAwakeMs: 1, network: undefined });
          t.ok(policy.ok, `${plan.name}: the activator accepts the labels`);
          if (policy.ok) {
            t.same(policy.policy.hosts, plan.hosts, `${plan.name}: activator sees the same hosts`);
            t.equal(policy.policy.http, plan.role === 'http', `${plan.name}: activator sees it as ${plan.role}`);
            if (plan.role === 'http') t.equal(policy.policy.port, plan.port, `${plan.name}: same port`);
          }
        }
      } else {
        t.notOk(result.ok, 'rejected');
        if (result.ok) return;
        for (const e of result.errors) {
          t.ok(e.file && e.key && e.message, `error names file and key: ${formatIssue(e)}`);
        }
        golden(t, join(DIR, name, 'expected-errors.txt'), `${result.errors.map(formatIssue).join('\n')}\n`);
      }
    });
  }
});

t.test("the seed's label set is reproduced exactly", async (t) => {
  const seed = readFileSync(join(DIR, 'seed-labels.txt'), 'utf8')
    .split('\n')
    .map((l) => /^- (.+?)=(.*)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1] as string, m[2] as string] as const);
  t.equal(seed.length, 9, 'nine seed labels');
  const result = runCase('ok-seed') as LabelledStack;
  t.ok(result.ok);
  const web = result.services.find((s) => s.name === 'web');
  for (const [key, value] of seed) t.equal(web?.labels[key], value, key);
  // Ours on top of the seed's: Traefik's enable + network, and the activator's.
  t.equal(web?.labels['traefik.enable'], 'true');
  t.equal(web?.labels['traefik.swarm.network'], 'traefik-public');
  t.equal(web?.labels[LABELS.enable], 'true');
  t.equal(web?.labels[LABELS.group], 'vistacredit-web-develop');
  t.equal(web?.labels[LABELS.replicas], '2', 'wakes to the replicas it had');
  t.equal(web?.replicas, 0, 'deployed asleep');
  t.same(result.urls, ['https://vista.doc.endevel.cz']);
  t.equal(result.stack, 'vistacredit-web-develop');
});

t.test('defaults: middleware referenced in the swarm provider namespace, resolver le, asleep', async (t) => {
  const result = runCase('ok-web-worker') as LabelledStack;
  t.ok(result.ok);
  const web = result.services.find((s) => s.name === 'web');
  const worker = result.services.find((s) => s.name === 'worker');
  t.equal(web?.labels['traefik.http.routers.shop-mr-42-https.middlewares'], 'non-www-redirect-secure@swarm');
  t.equal(web?.labels['traefik.http.routers.shop-mr-42-https.tls.certresolver'], 'le');
  t.equal(web?.labels['traefik.http.routers.shop-mr-42-http.rule'], 'Host(`shop.mr-42.preview.example.com`)');
  t.equal(web?.labels[LABELS.idleTimeout], '30m');
  t.equal(worker?.role, 'worker');
  t.notOk(Object.keys(worker?.labels ?? {}).some((k) => k.startsWith('traefik.')), 'a worker gets no Traefik labels');
  t.equal(worker?.labels[LABELS.group], web?.labels[LABELS.group], 'web and worker share the group');
  t.same([web?.replicas, web?.wakeReplicas, worker?.replicas, worker?.wakeReplicas], [0, 2, 0, 1]);
  const doc = YAML.parse(result.yaml) as { services: Record<string, { networks?: string[] }>; networks: Record<string, unknown> };
  t.same(doc.services.web?.networks, ['default', 'traefik-public'], 'web joins the shared network and keeps the default one');
  t.equal(doc.services.worker?.networks, undefined, 'the worker is not put on the shared network');
  t.same(doc.networks['traefik-public'], { external: true });
});

t.test('--awake keeps the replicas; --override-labels replaces and drops conflicting labels', async (t) => {
  const awake = runCase('ok-awake') as LabelledStack;
  t.equal(awake.services[0]?.replicas, 2);
  const over = runCase('ok-override-labels') as LabelledStack;
  t.ok(over.ok);
  const labels = over.services[0]?.labels ?? {};
  t.equal(labels['traefik.enable'], 'true', 'replaced');
  t.equal(labels['com.example.keep'], 'me', 'unrelated user label kept');
  t.notOk(Object.keys(labels).some((k) => k.includes('vistacredit-web-develop')), "the user's own routers are dropped");
  t.equal(labels['traefik.http.services.vistacredit-web-mr-42.loadbalancer.server.port'], '80', 'port taken from the dropped label');
  t.match(over.warnings.map(formatIssue).join('\n'), /--override-labels replaced 1 label\(s\) and dropped 9 of yours/);
});

t.test('the output quotes strings Docker would otherwise re-type', async (t) => {
  const result = labelStack('name: a\nservices:\n  web:\n    image: x\n    expose: ["80"]\n    deploy:\n      labels:\n        when: 2026-01-01T00:00:00Z\n        flag: "on"\n', { ...BASE, file: 'x.yml' });
  t.ok(result.ok);
  if (result.ok) {
    t.match(result.yaml, /when: "2026-01-01T00:00:00Z"/);
    t.match(result.yaml, /flag: "on"/);
  }
});
