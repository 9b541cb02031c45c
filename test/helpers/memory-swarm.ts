/** A hand-written in-memory SwarmClient for unit tests of pure logic (never proof a feature works). */
import { LABELS } from '../../src/labels.js';
import type { ScaleOptions, ServiceEvent, ServiceInfo, SwarmClient, TaskInfo } from '../../src/swarm/swarm.js';

export /** Services and tasks in memory; a scale-up makes a task that turns `running` after `startMs`. */
class MemorySwarm implements SwarmClient {
  services = new Map<string, ServiceInfo>();
  tasks = new Map<string, TaskInfo[]>();
  calls: string[] = [];
  /** What a new task does: run on this port, or fail with this error. */
  behaviour = new Map<string, { port?: number; fail?: string; startMs?: number }>();

  add(name: string, labels: Record<string, string>, replicas = 0): void {
    this.services.set(name, { id: `id-${name}`, name, version: 1, labels: { [LABELS.enable]: 'true', ...labels }, replicas, updatedAt: '', templateKey: 'template-1' });
    this.tasks.set(`id-${name}`, []);
  }
  async ping() {}
  async listServices() {
    this.calls.push('listServices');
    return [...this.services.values()];
  }
  async inspectService(name: string) {
    return this.services.get(name) ?? [...this.services.values()].find((s) => s.id === name) ?? null;
  }
  async scaleService(name: string, replicas: number, options: ScaleOptions = {}) {
    this.calls.push(`scale ${name} ${replicas}`);
    const svc = this.services.get(name);
    if (!svc) throw new Error('no such service');
    const previousReplicas = svc.replicas;
    if (svc.replicas === replicas || (options.onlyIf && !options.onlyIf(svc))) return { changed: false, version: svc.version, previousReplicas };
    svc.replicas = replicas;
    svc.version += 1;
    svc.labels = { ...svc.labels, ...options.labels };
    const list = this.tasks.get(svc.id) ?? [];
    if (replicas === 0) for (const task of list) task.desiredState = 'shutdown';
    else {
      const b = this.behaviour.get(name) ?? {};
      const task: TaskInfo = { id: `task-${name}-${list.length}`, serviceId: svc.id, nodeId: 'n1', state: 'starting', desiredState: 'running', error: undefined, message: '', exitCode: undefined, containerId: 'c1', createdAt: new Date().toISOString(), addresses: [{ networkId: 'net', networkName: 'net', ip: '127.0.0.1' }] };
      list.push(task);
      setTimeout(() => {
        if (b.fail) Object.assign(task, { state: 'failed', error: b.fail, desiredState: 'shutdown' });
        else task.state = 'running';
      }, b.startMs ?? 30);
    }
    return { changed: true, version: svc.version, previousReplicas };
  }
  async updateServiceLabels(name: string, add: Record<string, string>) {
    const svc = this.services.get(name);
    if (!svc) throw new Error('no such service');
    svc.labels = { ...svc.labels, ...add };
    return svc;
  }
  async listTasks(serviceId: string) {
    this.calls.push('listTasks');
    return (this.tasks.get(serviceId) ?? []).map((task) => ({ ...task }));
  }
  async watchServices(signal: AbortSignal, _onEvent: (e: ServiceEvent) => void) {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  async containerNetworkBytes() {
    return null;
  }
}

