/** wake / sleep / set-idle / ls logic against a small in-memory SwarmClient. */
import t from 'tap';
import { resolveApp, setIdle, setKeepAwake, sleepApp, wakeApp } from '../../../src/deploy/app-control.js';
import { InvalidInputError } from '../../../src/deploy/errors.js';
import { describeSince, formatAge, listApps, toRow } from '../../../src/deploy/list-apps.js';
import { STACK_NAMESPACE_LABEL, type StackEngine, type StackService } from '../../../src/deploy/stack-engine.js';
import { LABELS } from '../../../src/labels.js';
import type { ScaleOptions, ScaleResult, ServiceInfo, SwarmClient, TaskInfo } from '../../../src/swarm/swarm.js';

class FakeSwarm implements SwarmClient, StackEngine {
  services: ServiceInfo[] = [];
  labelUpdates: Array<{ name: string; add: Record<string, string> }> = [];
  scaled: Array<{ name: string; replicas: number; labels: Record<string, string> | undefined }> = [];

  add(name: string, labels: Record<string, string>, replicas = 0): void {
    this.services.push({ id: `id-${name}`, name, version: 1, labels: { [LABELS.enable]: 'true', ...labels }, replicas, updatedAt: '', templateKey: 't1' });
  }
  async ping(): Promise<void> {}
  async listServices(filters: string[]): Promise<ServiceInfo[] & StackService[]> {
    const out = this.services.filter((s) => filters.every((f) => {
      const [k, v] = f.split('=') as [string, string];
      return s.labels[k] === v;
    }));
    return out.map((s) => ({ ...s, updateState: undefined, updateMessage: undefined }));
  }
  async inspectService(name: string): Promise<ServiceInfo | null> {
    return this.services.find((s) => s.name === name) ?? null;
  }
  async scaleService(name: string, replicas: number, options: ScaleOptions = {}): Promise<ScaleResult & { conflict?: boolean }> {
    const s = this.services.find((x) => x.name === name) as ServiceInfo;
    const previous = s.replicas;
    if (previous === replicas) return { changed: false, version: s.version, previousReplicas: previous };
    if (options.onlyIf && !options.onlyIf(s)) return { changed: false, version: s.version, previousReplicas: previous, conflict: true };
    s.replicas = replicas;
    s.version++;
    Object.assign(s.labels, options.labels ?? {});
    this.scaled.push({ name, replicas, labels: options.labels });
    return { changed: true, version: s.version, previousReplicas: previous };
  }
  async updateServiceLabels(name: string, add: Record<string, string>, remove: string[] = []): Promise<ServiceInfo> {
    const s = this.services.find((x) => x.name === name) as ServiceInfo;
    Object.assign(s.labels, add);
    for (const key of remove) delete s.labels[key];
    s.version++;
    this.labelUpdates.push({ name, add });
    return s;
  }
  async listTasks(serviceId: string): Promise<TaskInfo[]> {
    const s = this.services.find((x) => x.id === serviceId);
    return Array.from({ length: s?.replicas ?? 0 }, (_, i) => ({
      id: `${serviceId}-${i}`,
      serviceId,
      nodeId: 'n',
      state: 'running' as const,
      desiredState: 'running' as const,
      error: undefined,
      message: '',
      exitCode: undefined,
      containerId: undefined,
      createdAt: new Date().toISOString(),
      addresses: [],
    }));
  }
  async watchServices(): Promise<void> {}
  async containerNetworkBytes(): Promise<null> {
    return null;
  }
  async inspectNetwork(): Promise<null> {
    return null;
  }
  async listNetworks(): Promise<[]> {
    return [];
  }
  async removeNetwork(): Promise<void> {}
  async listConfigsAndSecrets(): Promise<[]> {
    return [];
  }
  async listLocalContainers(): Promise<[]> {
    return [];
  }
}

function cluster(): FakeSwarm {
  const s = new FakeSwarm();
  const web = { [STACK_NAMESPACE_LABEL]: 'shop-mr-1', [LABELS.group]: 'shop-mr-1', 'traefik.http.routers.shop-mr-1-http.rule': 'Host(`shop.mr-1.example.com`)', 'traefik.http.services.shop-mr-1.loadbalancer.server.port': '80' };
  s.add('shop-mr-1_web', { ...web, [LABELS.replicas]: '2', [LABELS.idleTimeout]: '30m', [LABELS.stateSince]: new Date(Date.now() - 3 * 3_600_000).toISOString() });
  s.add('shop-mr-1_worker', { [STACK_NAMESPACE_LABEL]: 'shop-mr-1', [LABELS.group]: 'shop-mr-1' });
  s.add('blog_web', { [LABELS.hosts]: 'blog.example.com', [LABELS.port]: '80' }, 1);
  return s;
}

t.test('resolveApp: a service means its group; stack and group names work too', async (t) => {
  const s = cluster();
  t.same((await resolveApp(s, 'shop-mr-1_web')).services.map((x) => x.name), ['shop-mr-1_web', 'shop-mr-1_worker']);
  t.equal((await resolveApp(s, 'shop-mr-1')).matchedBy, 'stack');
  t.same((await resolveApp(s, 'blog_web')).services.map((x) => x.name), ['blog_web']);
  await t.rejects(resolveApp(s, 'nope'), InvalidInputError);
});

t.test('wake scales every member to its swarm-activator.replicas with state labels; sleep back to idle', async (t) => {
  const s = cluster();
  const at = new Date('2026-11-26T10:00:00.000Z');
  const woke = await wakeApp({ swarm: s, engine: s, now: () => at }, 'shop-mr-1', { timeoutMs: 1000 });
  t.same(woke.services.map((x) => [x.name, x.from, x.to, x.changed]), [
    ['shop-mr-1_web', 0, 2, true],
    ['shop-mr-1_worker', 0, 1, true],
  ]);
  t.same(s.scaled[0]?.labels, { [LABELS.stateSince]: '2026-11-26T10:00:00.000Z', [LABELS.stateKind]: 'manual', [LABELS.stateReason]: 'manual wake (cli)' });
  t.ok(woke.convergedMs !== null);
  const again = await wakeApp({ swarm: s, engine: s }, 'shop-mr-1', { wait: false });
  t.same(again.services.map((x) => x.changed), [false, false], 'already awake: nothing written');
  const slept = await sleepApp({ swarm: s, engine: s }, 'shop-mr-1_worker', { timeoutMs: 1000 });
  t.same(slept.services.map((x) => [x.name, x.to]), [
    ['shop-mr-1_web', 0],
    ['shop-mr-1_worker', 0],
  ]);
  t.equal(s.services[0]?.labels[LABELS.stateReason], 'manual sleep (cli)');
});

t.test('set-idle writes only the idle-timeout label, after validating the duration', async (t) => {
  const s = cluster();
  const report = await setIdle({ swarm: s }, 'shop-mr-1', '45m');
  t.equal(report.idleTimeoutMs, 45 * 60_000);
  t.same(s.labelUpdates, [
    { name: 'shop-mr-1_web', add: { [LABELS.idleTimeout]: '45m' } },
    { name: 'shop-mr-1_worker', add: { [LABELS.idleTimeout]: '45m' } },
  ]);
  t.same(s.scaled, [], 'no scaling');
  await t.rejects(setIdle({ swarm: s }, 'shop-mr-1', 'a while'), { message: /<duration>: invalid duration/ });
  await t.rejects(setIdle({ swarm: s }, 'shop-mr-1', '0s'), { message: /longer than 0/ });
});

t.test('ls: state, hosts, idle timeout and "asleep for" from Docker alone', async (t) => {
  const s = cluster();
  const { apps, activator } = await listApps(s);
  t.equal(activator, 'not asked');
  const web = apps.find((a) => a.service === 'shop-mr-1_web');
  t.match(web, { state: 'asleep', kind: 'http', hosts: ['shop.mr-1.example.com'], replicas: 0, wakeReplicas: 2, idleTimeout: '30m', idleTimeoutMs: 1_800_000, lastActivity: null });
  t.equal(describeSince(web!, Date.now()), 'asleep for 3h (idle 30m)');
  t.match(apps.find((a) => a.service === 'shop-mr-1_worker'), { kind: 'worker', state: 'asleep', since: null });
  t.match(apps.find((a) => a.service === 'blog_web'), { state: 'awake', running: 1, hosts: ['blog.example.com'] });
  const unreachable = await listApps(s, { activatorUrl: 'http://127.0.0.1:1', fetchTimeoutMs: 500 });
  t.equal(unreachable.activator, 'unreachable');
  t.match(unreachable.warnings[0], /last activity unknown/);
});

t.test('ls rows take last activity and waking from the activator', async (t) => {
  const svc: ServiceInfo = { id: 'a', name: 'a_web', version: 1, labels: { [LABELS.enable]: 'true', [LABELS.hosts]: 'a.example.com', [LABELS.port]: '80' }, replicas: 1, updatedAt: '', templateKey: 't1' };
  const row = toRow(svc, [], { service: 'a_web', state: 'waking', lastActivity: 1234, idleTimeoutMs: 600_000, open: 2 });
  t.match(row, { state: 'waking', lastActivity: 1234, idleTimeoutMs: 600_000, open: 2, idleTimeout: null });
  t.same([formatAge(5_000), formatAge(12 * 60_000), formatAge(200 * 60_000), formatAge(50 * 3_600_000)], ['5s', '12m', '3h20m', '2d2h']);
});

t.test('keep-awake: label-only update of every service of the app; off removes it; bad input names the argument', async (t) => {
  const s = cluster();
  const now = () => Date.parse('2026-11-30T06:00:00Z'); // a Monday
  const report = await setKeepAwake({ swarm: s }, 'shop-mr-1', 'Mon-Fri 08:00-18:00', { timezone: 'Europe/Berlin', lead: '5m', now });
  t.match(report, { keepAwake: 'Mon-Fri 08:00-18:00', timezone: 'Europe/Berlin', lead: '5m', next: { start: '2026-11-30T07:00:00.000Z', end: '2026-11-30T17:00:00.000Z' } });
  t.same(s.labelUpdates.map((u) => u.name), ['shop-mr-1_web', 'shop-mr-1_worker'], 'the worker too: the group sleeps and wakes together');
  t.same(s.labelUpdates[0]?.add, { [LABELS.keepAwake]: 'Mon-Fri 08:00-18:00', [LABELS.timezone]: 'Europe/Berlin', [LABELS.keepAwakeLead]: '5m' });
  t.same(s.scaled, [], 'no scaling');
  const off = await setKeepAwake({ swarm: s }, 'shop-mr-1', 'off');
  t.equal(off.keepAwake, null);
  t.same(off.services.map((x) => x.previous), ['Mon-Fri 08:00-18:00', 'Mon-Fri 08:00-18:00']);
  const web = await s.inspectService('shop-mr-1_web');
  t.equal(web?.labels[LABELS.keepAwake], undefined, 'label removed');
  t.equal(web?.labels[LABELS.timezone], undefined);
  await t.rejects(setKeepAwake({ swarm: s }, 'shop-mr-1', 'Mon-Fry 08:00-18:00'), { message: /^<windows>: .*"Fry" is not a day/ });
  await t.rejects(setKeepAwake({ swarm: s }, 'shop-mr-1', '08:00-18:00', { timezone: 'Europe/Nowhere' }), { message: /^--timezone: .*not an IANA time zone/ });
  await t.rejects(setKeepAwake({ swarm: s }, 'shop-mr-1', '08:00-18:00', { lead: '3d' }), { message: /^--lead: .*longer than 1d/ });
  await t.rejects(setKeepAwake({ swarm: s }, 'nope', '08:00-18:00'), InvalidInputError);
});
