/**
 * Host claims and groups across deployments in the AppRegistry (pure logic; an in-memory
 * SwarmClient stands in for Docker, whose CreatedAt decides who was first).
 */
import t from 'tap';
import pino from 'pino';
import { Writable } from 'node:stream';
import { AppRegistry } from '../../../src/discovery/app-registry.js';
import { LABELS } from '../../../src/labels.js';
import { MemorySwarm } from '../../helpers/memory-swarm.js';

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk)) as Record<string, unknown>); cb(); } });
  return { log: pino({ level: 'info' }, stream), lines };
}

async function registryOf(t: { teardown(fn: () => unknown): void }, swarm: MemorySwarm, log: pino.Logger) {
  const registry = new AppRegistry({ swarm, defaults: { strategy: 'blocking', wakeTimeoutMs: 5000, idleTimeoutMs: 60_000, minAwakeMs: 0, network: 'net' }, resyncIntervalMs: 60_000, log });
  await registry.start();
  t.teardown(() => registry.stop());
  return registry;
}

function created(swarm: MemorySwarm, name: string, at: string): void {
  const svc = swarm.services.get(name);
  if (svc) svc.createdAt = at;
}

t.test('two services claiming one Host: the first owner keeps it, both are flagged, the log says so', async (t) => {
  const swarm = new MemorySwarm();
  // "a-intruder" sorts first by name but was created later: by name it would have won.
  swarm.add('shop-prod_web', { [LABELS.hosts]: 'shop.example.com', [LABELS.port]: '80', 'com.docker.stack.namespace': 'shop-prod' });
  swarm.add('a-intruder_web', { [LABELS.hosts]: 'shop.example.com,other.example.com', [LABELS.port]: '80', 'com.docker.stack.namespace': 'a-intruder' });
  created(swarm, 'shop-prod_web', '2026-11-01T10:00:00Z');
  created(swarm, 'a-intruder_web', '2026-11-30T10:00:00Z');
  const { log, lines } = capture();
  const registry = await registryOf(t, swarm, log);
  t.equal(registry.byHost('shop.example.com')?.policy.service, 'shop-prod_web', 'the first owner keeps the Host');
  t.equal(registry.byHost('other.example.com')?.policy.service, 'a-intruder_web', 'its other Host is its own');
  const flagged = { host: 'shop.example.com', owner: 'shop-prod_web', claimants: ['a-intruder_web'] };
  t.same(registry.conflictsOf('shop-prod_web'), [flagged], 'the owner is flagged');
  t.same(registry.conflictsOf('a-intruder_web'), [flagged], 'the claimant is flagged');
  const logged = lines.filter((l) => l.host === 'shop.example.com' && l.level === 50);
  t.equal(logged.length, 1, 'one error line');
  t.equal(logged[0]?.owner, 'shop-prod_web');
  t.equal(logged[0]?.service, 'a-intruder_web');
  await registry.resync();
  t.equal(lines.filter((l) => l.host === 'shop.example.com').length, 1, 'not logged again on each resync');
});

t.test('an owner keeps its Host even against an older claimant that appears later', async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('new_web', { [LABELS.hosts]: 'x.example.com', [LABELS.port]: '80' });
  created(swarm, 'new_web', '2026-11-30T10:00:00Z');
  const registry = await registryOf(t, swarm, pino({ level: 'silent' }));
  t.equal(registry.byHost('x.example.com')?.policy.service, 'new_web');
  swarm.add('old_web', { [LABELS.hosts]: 'x.example.com', [LABELS.port]: '80' });
  created(swarm, 'old_web', '2026-01-01T10:00:00Z'); // e.g. a clock or a restore: still not first here
  await registry.resync();
  t.equal(registry.byHost('x.example.com')?.policy.service, 'new_web', 'the Host does not move to a later claimant');
  swarm.services.delete('new_web');
  await registry.resync();
  t.equal(registry.byHost('x.example.com')?.policy.service, 'old_web', 'once the owner is gone, the next claimant gets it');
  t.same(registry.hostConflicts(), [], 'and the conflict is over');
});

t.test("a service cannot join another deployment's group", async (t) => {
  const swarm = new MemorySwarm();
  swarm.add('shop-prod_web', { [LABELS.hosts]: 'shop.example.com', [LABELS.port]: '80', [LABELS.group]: 'shop-prod', 'com.docker.stack.namespace': 'shop-prod' });
  swarm.add('shop-prod_worker', { [LABELS.group]: 'shop-prod', 'com.docker.stack.namespace': 'shop-prod' });
  // Another stack names the same group: with it, a wake of shop would scale this one, and its idle scale-down would take shop's members.
  swarm.add('evil-pr-1_web', { [LABELS.hosts]: 'evil.example.com', [LABELS.port]: '80', [LABELS.group]: 'shop-prod', 'com.docker.stack.namespace': 'evil-pr-1' });
  const { log, lines } = capture();
  const registry = await registryOf(t, swarm, log);
  const shop = registry.byService('shop-prod_web');
  const evil = registry.byService('evil-pr-1_web');
  if (!shop || !evil) throw new Error('not discovered');
  t.same(registry.groupMembers(shop.policy.group, shop.deployment).map((e) => e.policy.service).sort(), ['shop-prod_web', 'shop-prod_worker'], "shop's group is its own stack's services");
  t.same(registry.groupMembers(evil.policy.group, evil.deployment).map((e) => e.policy.service), ['evil-pr-1_web'], 'the other stack is a group of its own');
  t.ok(lines.some((l) => l.group === 'shop-prod' && l.level === 40), 'a warning names the group used in two deployments');
});
