/**
 * stack file (YAML text) + options → the same stack with Traefik and activator labels added, or
 * every problem found, each naming the file, the service and the key. Pure: no Docker, no clock.
 *
 * Rules (docs/deploy.md explains them for users):
 * - A service serves HTTP when it has a port: `x-swarm-activator.port`, else a `swarm-activator.port`
 *   or `traefik.http.services.*.loadbalancer.server.port` label, else the first TCP port of
 *   `expose:`, else of `ports:`. `x-swarm-activator.http: false` makes it a worker anyway, and
 *   `x-swarm-activator: false` (or `enable: false`) leaves it unmanaged (always on, no labels).
 * - One HTTP service is the main one (`x-swarm-activator.main: true`, else the first in the file):
 *   host `{app}.{env}.{domain}`, routers `<app>-<env>-http|https`. Other HTTP services get
 *   `{service}-{app}.{env}.{domain}` and routers `<app>-<env>-<service>-http|https`.
 * - Every managed service gets the group label (default: the stack name) and the replicas to wake
 *   to; unless `awake`, it is deployed with `deploy.replicas: 0` (or its idle-replicas).
 */
import YAML from 'yaml';
import { MAX_TIMER_MS, parseDuration } from '../duration.js';
import { parseApp } from '../apps/parse-app.js';
import { parseTraefikLabels } from '../apps/traefik-labels.js';
import { DEFAULT_POLICY, LABEL_PREFIX, LABELS, STRATEGIES, TRAEFIK } from '../labels.js';
import { isValidTimezone, parseWindows } from '../idle/keep-awake.js';
import { isValidHostname, normaliseName } from '../traefik-rule.js';
import {
  attachNetwork,
  describeValue,
  detectPort,
  isMap,
  labelsToObject,
  readLabels,
  upsertLabels,
  writeLabels,
  type Json,
  type JsonMap,
  type LabelSet,
} from './compose.js';

export const EXTENSION_KEY = 'x-swarm-activator';

export const DEPLOY_DEFAULTS = {
  hostTemplate: '{app}.{env}.{domain}',
  serviceHostTemplate: '{service}-{app}.{env}.{domain}',
  network: 'traefik-public',
  certResolver: 'le',
  middlewares: ['non-www-redirect-secure@swarm'],
  httpEntrypoint: 'http',
  httpsEntrypoint: 'https',
} as const;

export interface StackIssue {
  file: string;
  /** Compose service name (the key under `services:`); absent for stack-wide problems. */
  service?: string;
  /** The key (or flag) to fix, e.g. "deploy.labels.traefik.enable", "x-swarm-activator.port", "--env". */
  key: string;
  message: string;
}

export function formatIssue(issue: StackIssue): string {
  const where = issue.service === undefined ? issue.file : `${issue.file}: services.${issue.service}`;
  return `${where}: ${issue.key}: ${issue.message}`;
}

export interface LabelStackOptions {
  /** Path shown in messages. */
  file: string;
  env: string;
  domain: string;
  /** Overrides the stack file's top-level `name:`. */
  app?: string;
  hostTemplate?: string;
  serviceHostTemplate?: string;
  network?: string;
  certResolver?: string;
  /** Middlewares of both routers; empty list for none. */
  middlewares?: readonly string[];
  httpEntrypoint?: string;
  httpsEntrypoint?: string;
  idleTimeout?: string;
  strategy?: string;
  group?: string;
  /** Keep-awake windows of every service, e.g. "Mon-Fri 08:00-18:00", and their time zone. */
  keepAwake?: string;
  timezone?: string;
  /** Keep the replicas as written instead of deploying asleep. */
  awake?: boolean;
  /** Let our labels replace conflicting user labels (and drop the user's own routers) instead of failing. */
  overrideLabels?: boolean;
}

export type ServiceRole = 'http' | 'worker' | 'unmanaged';

export interface ServicePlan {
  /** The key under `services:`. */
  name: string;
  /** The Swarm service name: <stack>_<name>. */
  swarmName: string;
  role: ServiceRole;
  main: boolean;
  hosts: string[];
  port: number | null;
  /** deploy.replicas as written to the output; null when unset (unmanaged services keep Docker's default). */
  replicas: number | null;
  /** What the activator wakes it to (swarm-activator.replicas); null for unmanaged services. */
  wakeReplicas: number | null;
  /** Replicas while asleep (swarm-activator.idle-replicas, default 0); null for unmanaged services. */
  idleReplicas: number | null;
  /** The service's final deploy.labels. */
  labels: Record<string, string>;
}

export interface LabelledStack {
  ok: true;
  app: string;
  env: string;
  stack: string;
  group: string;
  services: ServicePlan[];
  urls: string[];
  /** The labelled stack as data (top-level `name:` and x-swarm-activator removed); see stringifyStack. */
  document: JsonMap;
  yaml: string;
  warnings: StackIssue[];
}

export type LabelStackResult = LabelledStack | { ok: false; errors: StackIssue[]; warnings: StackIssue[] };

const NAME_RE = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const NAME_HINT = 'lowercase letters, digits and "-", at most 63 characters, not starting or ending with "-"';
/** Docker refuses service names longer than this. */
const MAX_SERVICE_NAME = 63;
const EXTENSION_KEYS = ['enable', 'http', 'port', 'main', 'host', 'idle-timeout', 'strategy'] as const;
const TEMPLATE_VARS = ['app', 'env', 'domain', 'service', 'stack'] as const;

interface Extension {
  enable?: boolean;
  http?: boolean;
  port?: number;
  main?: boolean;
  host?: string;
  idleTimeout?: string;
  strategy?: string;
}

export function labelStack(text: string, options: LabelStackOptions): LabelStackResult {
  const file = options.file;
  const errors: StackIssue[] = [];
  const warnings: StackIssue[] = [];
  const fail = (key: string, message: string, service?: string) =>
    errors.push(service === undefined ? { file, key, message } : { file, service, key, message });
  const warn = (key: string, message: string, service?: string) =>
    warnings.push(service === undefined ? { file, key, message } : { file, service, key, message });

  // --- parse ----------------------------------------------------------------------------------
  const doc = YAML.parseDocument(text, { merge: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) fail('(yaml)', (e.message.split('\n')[0] ?? e.message).replace(/:$/, ''));
    return { ok: false, errors, warnings };
  }
  const root = doc.toJS({ maxAliasCount: 10_000 }) as unknown;
  if (!isMap(root)) {
    fail('(root)', 'the stack file must be a YAML map with a "services:" key');
    return { ok: false, errors, warnings };
  }
  const stackDoc: JsonMap = structuredClone(root);
  const services = stackDoc.services;
  if (!isMap(services) || Object.keys(services).length === 0) {
    fail('services', 'must be a map with at least one service');
    return { ok: false, errors, warnings };
  }

  // --- stack-wide options ---------------------------------------------------------------------
  const rawName = stackDoc.name;
  delete stackDoc.name; // docker stack deploy rejects a top-level name ("Additional property name is not allowed")
  delete stackDoc[EXTENSION_KEY];
  const app = options.app ?? (typeof rawName === 'string' ? rawName : undefined);
  const appKey = options.app !== undefined ? '--app' : 'name';
  if (app === undefined) fail('name', 'no app name: set a top-level "name:" in the stack file or pass --app');
  else if (!NAME_RE.test(app)) fail(appKey, `"${app}" is not a valid app name (${NAME_HINT})`);
  if (!NAME_RE.test(options.env)) fail('--env', `"${options.env}" is not a valid environment name (${NAME_HINT})`);
  if (!isValidHostname(options.domain)) fail('--domain', `"${options.domain}" is not a valid DNS name`);
  const network = options.network ?? DEPLOY_DEFAULTS.network;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(network)) fail('--network', `"${network}" is not a valid network name`);
  const certResolver = options.certResolver ?? DEPLOY_DEFAULTS.certResolver;
  const middlewares = [...(options.middlewares ?? DEPLOY_DEFAULTS.middlewares)].map((m) => m.trim()).filter(Boolean);
  for (const m of middlewares) if (!/^[A-Za-z0-9_.-]+(@[a-z0-9-]+)?$/.test(m)) fail('--middlewares', `"${m}" is not a middleware name (name or name@provider)`);
  const httpEp = options.httpEntrypoint ?? DEPLOY_DEFAULTS.httpEntrypoint;
  const httpsEp = options.httpsEntrypoint ?? DEPLOY_DEFAULTS.httpsEntrypoint;
  if (options.idleTimeout !== undefined) checkDuration(options.idleTimeout, (m) => fail('--idle-timeout', m));
  if (options.strategy !== undefined) checkStrategy(options.strategy, (m) => fail('--strategy', m));
  if (options.keepAwake !== undefined) {
    try {
      parseWindows(options.keepAwake);
    } catch (err) {
      fail('--keep-awake', (err as Error).message);
    }
  }
  if (options.timezone !== undefined && !isValidTimezone(options.timezone.trim())) fail('--timezone', `"${options.timezone}" is not an IANA time zone (e.g. Europe/Berlin)`);
  if (options.group !== undefined && !/^\S+$/.test(options.group)) fail('--group', `"${options.group}" must be a non-empty word`);
  const hostTemplate = options.hostTemplate ?? DEPLOY_DEFAULTS.hostTemplate;
  const serviceHostTemplate = options.serviceHostTemplate ?? DEPLOY_DEFAULTS.serviceHostTemplate;
  checkTemplate(hostTemplate, (m) => fail('--host-template', m));
  checkTemplate(serviceHostTemplate, (m) => fail('--service-host-template', m));
  const namesOk = errors.length === 0;

  const appName = app ?? '';
  const stack = `${appName}-${options.env}`;
  const base = `${appName}-${options.env}`;
  const defaultGroup = options.group ?? stack;

  // --- shared network (top level) --------------------------------------------------------------
  const networkKey = ensureExternalNetwork(stackDoc, network, fail);

  // --- per service: role, port, extension -----------------------------------------------------
  interface Draft {
    name: string;
    svc: JsonMap;
    ext: Extension;
    labels: LabelSet;
    role: ServiceRole;
    port: number | null;
    portPublished: boolean;
    /** deploy.replicas as written. */
    written: number | undefined;
  }
  const drafts: Draft[] = [];
  for (const [name, svc] of Object.entries(services)) {
    if (!isMap(svc)) {
      fail('(service)', 'must be a map', name);
      continue;
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) fail('(service name)', `"${name}" is not a valid service name`, name);
    if (namesOk && `${stack}_${name}`.length > MAX_SERVICE_NAME) {
      fail('(service name)', `the Swarm service name "${stack}_${name}" is longer than ${MAX_SERVICE_NAME} characters; use a shorter app, env or service name`, name);
    }
    const ext = readExtension(svc[EXTENSION_KEY], (key, m) => fail(`${EXTENSION_KEY}${key ? `.${key}` : ''}`, m, name));
    delete svc[EXTENSION_KEY];
    const deploy = svc.deploy;
    if (deploy !== undefined && deploy !== null && !isMap(deploy)) {
      fail('deploy', 'must be a map', name);
      continue;
    }
    let read = readLabels(isMap(deploy) ? deploy.labels : undefined);
    if (!read.ok) {
      fail('deploy.labels', read.message, name);
      read = { ok: true, labels: { form: 'list', entries: [] } };
    }
    const userLabels = labelsToObject(read.labels);
    const written = readReplicas(svc, (m) => fail('deploy.replicas', m, name));
    const containerLabels = readLabels(svc.labels);
    if (containerLabels.ok && containerLabels.labels.entries.some(([k]) => k.startsWith('traefik.') || k.startsWith(`${LABEL_PREFIX}.`))) {
      warn('labels', 'has traefik/swarm-activator labels under the container "labels:"; in Swarm they are read from "deploy.labels:" only', name);
    }

    let role: ServiceRole = 'worker';
    let port: number | null = null;
    let portPublished = false;
    if (ext.enable === false) {
      role = 'unmanaged';
    } else {
      const fromLabel = portFromLabels(userLabels, (key, m) => fail(`deploy.labels.${key}`, m, name));
      let found: number | undefined = ext.port ?? fromLabel;
      if (found === undefined) {
        const detected = detectPort(svc);
        if (!detected.ok) fail(detected.key, detected.message, name);
        else if (detected.found) {
          found = detected.found.port;
          portPublished = detected.found.published;
        }
      }
      const wantsHttp = ext.main === true || ext.host !== undefined || parseTraefikLabels(userLabels, name).routers.some((r) => r.rule !== '');
      if (ext.http === false) {
        role = 'worker';
      } else if (found !== undefined) {
        role = 'http';
        port = found;
      } else if (wantsHttp || ext.http === true) {
        fail(`${EXTENSION_KEY}.port`, 'no port: this service must serve HTTP (it is main, has a host or a Traefik router) but has no "expose:", "ports:" or x-swarm-activator.port', name);
      }
      const mode = isMap(deploy) ? deploy.mode : undefined;
      if (mode !== undefined && mode !== null && mode !== 'replicated') {
        fail('deploy.mode', `"${describeValue(mode)}" services cannot be scaled to zero; use "replicated", or set ${EXTENSION_KEY}: false to leave this service always on`, name);
      }
    }
    drafts.push({ name, svc, ext, labels: read.labels, role, port, portPublished, written });
  }
  if (errors.length > 0) return { ok: false, errors, warnings };

  const httpDrafts = drafts.filter((d) => d.role === 'http');
  if (httpDrafts.length === 0) {
    const first = drafts.find((d) => d.role !== 'unmanaged') ?? drafts[0];
    fail(`${EXTENSION_KEY}.port`, 'no port: no service of this stack serves HTTP; give the main service "expose:", "ports:" or x-swarm-activator.port', first?.name);
    return { ok: false, errors, warnings };
  }
  const explicitMain = httpDrafts.filter((d) => d.ext.main === true);
  for (const d of explicitMain.slice(1)) fail(`${EXTENSION_KEY}.main`, `only one service can be main (${explicitMain[0]?.name} already is)`, d.name);
  for (const d of drafts) if (d.ext.main === true && d.role !== 'http') fail(`${EXTENSION_KEY}.main`, 'a main service must serve HTTP', d.name);
  const mainName = (explicitMain[0] ?? httpDrafts[0])?.name;

  // --- labels ---------------------------------------------------------------------------------
  const plans: ServicePlan[] = [];
  const hostOwner = new Map<string, string>();
  for (const d of drafts) {
    const userLabels = labelsToObject(d.labels);
    const provenance = { [LABELS.deployApp]: appName, [LABELS.deployEnv]: options.env };
    if (d.role === 'unmanaged') {
      const labels = upsertLabels(d.labels, provenance);
      setDeployLabels(d.svc, labels);
      plans.push({ name: d.name, swarmName: `${stack}_${d.name}`, role: 'unmanaged', main: false, hosts: [], port: null, replicas: d.written ?? null, wakeReplicas: null, idleReplicas: null, labels: labelsToObject(labels) });
      continue;
    }
    const ours: Record<string, string> = {};
    const main = d.name === mainName;
    const hosts: string[] = [];
    const routerBase = main ? normaliseName(base) : normaliseName(`${base}-${d.name}`);
    const routers = { http: `${routerBase}-http`, https: `${routerBase}-https` };

    if (d.role === 'http') {
      const template = d.ext.host ?? (main ? hostTemplate : serviceHostTemplate);
      const templateKey = d.ext.host !== undefined ? `${EXTENSION_KEY}.host` : main ? '--host-template' : '--service-host-template';
      const host = renderTemplate(template, { app: appName, env: options.env, domain: options.domain, service: dnsSafe(d.name), stack }).toLowerCase();
      if (!isValidHostname(host)) {
        fail(templateKey, `host "${host}" (from "${template}") is not a valid DNS name`, d.name);
      } else if (hostOwner.has(host)) {
        fail(templateKey, `host "${host}" is already used by service ${hostOwner.get(host)}`, d.name);
      } else {
        hostOwner.set(host, d.name);
        hosts.push(host);
      }
      const rule = hosts.map((h) => `Host(\`${h}\`)`).join(' || ');
      ours['traefik.enable'] = 'true';
      ours[TRAEFIK.swarmNetwork] = network;
      ours[`traefik.http.routers.${routers.http}.rule`] = rule;
      ours[`traefik.http.routers.${routers.http}.entrypoints`] = httpEp;
      if (middlewares.length > 0) ours[`traefik.http.routers.${routers.http}.middlewares`] = middlewares.join(',');
      ours[`traefik.http.routers.${routers.https}.rule`] = rule;
      ours[`traefik.http.routers.${routers.https}.entrypoints`] = httpsEp;
      if (middlewares.length > 0) ours[`traefik.http.routers.${routers.https}.middlewares`] = middlewares.join(',');
      ours[`traefik.http.routers.${routers.https}.tls`] = 'true';
      if (certResolver) ours[`traefik.http.routers.${routers.https}.tls.certresolver`] = certResolver;
      ours[`traefik.http.services.${routerBase}.loadbalancer.server.port`] = String(d.port);
      if (d.portPublished) {
        warn('ports', `publishes container port ${d.port} on a host port; Traefik reaches it over the "${network}" network, and two environments of this stack would clash on the host port (use "expose:" instead)`, d.name);
      }
    }

    ours[LABELS.enable] = 'true';
    if (options.group !== undefined || userLabels[LABELS.group] === undefined) ours[LABELS.group] = defaultGroup;
    const idleTimeout = d.ext.idleTimeout ?? options.idleTimeout;
    if (idleTimeout !== undefined) ours[LABELS.idleTimeout] = idleTimeout.trim();
    const strategy = d.ext.strategy ?? options.strategy;
    if (strategy !== undefined) ours[LABELS.strategy] = strategy.trim();
    if (options.keepAwake !== undefined) ours[LABELS.keepAwake] = options.keepAwake.trim();
    if (options.timezone !== undefined) ours[LABELS.timezone] = options.timezone.trim();

    // Replicas: what it runs awake (deploy.replicas as written, else our label, else 1).
    const written = d.written;
    const labelReplicas = intLabel(userLabels, LABELS.replicas, 1, 100, (m) => fail(`deploy.labels.${LABELS.replicas}`, m, d.name));
    const wake = Math.max(1, written ?? labelReplicas ?? 1);
    if (wake > 100) fail('deploy.replicas', `${wake} is more than the activator wakes (at most 100)`, d.name);
    ours[LABELS.replicas] = String(wake);
    const idleReplicas = intLabel(userLabels, LABELS.idleReplicas, 0, 100, (m) => fail(`deploy.labels.${LABELS.idleReplicas}`, m, d.name)) ?? 0;
    const replicas = options.awake ? wake : idleReplicas;
    Object.assign(ours, provenance);

    // Conflicts with what the user wrote.
    const conflicts = Object.keys(ours).filter((k) => userLabels[k] !== undefined && userLabels[k].trim() !== ours[k]);
    const foreign = d.role === 'http' ? foreignTraefikObjects(userLabels, routers, routerBase) : [];
    const userHosts = userLabels[LABELS.hosts];
    const hostsConflict = d.role === 'http' && userHosts !== undefined && !sameSet(userHosts.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean), hosts);
    let labels = d.labels;
    if (!options.overrideLabels) {
      for (const k of conflicts) {
        fail(`deploy.labels.${k}`, `is set to "${userLabels[k]}" but deploy sets "${ours[k]}" (change or remove yours, or pass --override-labels)`, d.name);
      }
      for (const f of foreign) {
        fail(`deploy.labels.${f.prefix}*`, `the service already defines its own Traefik ${f.kind} "${f.name}"${f.detail}; deploy defines ${f.kind === 'router' ? `routers ${routers.http} and ${routers.https}` : `service ${routerBase}`} (remove yours, or pass --override-labels to drop it)`, d.name);
      }
      if (hostsConflict) {
        fail(`deploy.labels.${LABELS.hosts}`, `is "${userHosts}" but the service is routed for "${hosts.join(',')}" (remove it, or pass --override-labels)`, d.name);
      }
    } else {
      const drop = new Set<string>();
      for (const f of foreign) for (const k of Object.keys(userLabels)) if (k.startsWith(f.prefix)) drop.add(k);
      if (hostsConflict) drop.add(LABELS.hosts);
      labels = { form: labels.form, entries: labels.entries.filter(([k]) => !drop.has(k)) };
      if (conflicts.length + foreign.length + (hostsConflict ? 1 : 0) > 0) {
        warn('deploy.labels', `--override-labels replaced ${conflicts.length} label(s) and dropped ${drop.size} of yours`, d.name);
      }
    }
    labels = upsertLabels(labels, ours);
    setDeployLabels(d.svc, labels);
    setReplicas(d.svc, replicas);
    if (d.role === 'http') attachNetwork(d.svc, networkKey);

    const finalLabels = labelsToObject(labels);
    plans.push({
      name: d.name,
      swarmName: `${stack}_${d.name}`,
      role: d.role,
      main,
      hosts,
      port: d.port,
      replicas,
      wakeReplicas: wake,
      idleReplicas,
      labels: finalLabels,
    });
  }

  // Last check: the activator must accept what we produced (catches bad user labels we kept).
  const reported = new Set(errors.map((e) => `${e.service}|${e.key}`));
  for (const plan of plans) {
    if (plan.role === 'unmanaged') continue;
    // The defaults' values don't matter here: only whether the labels parse.
    const result = parseApp({ id: '', name: plan.swarmName, labels: plan.labels }, DEFAULT_POLICY);
    if (!result.ok) {
      for (const e of result.errors) {
        // Skip what is already reported, and follow-ups of an earlier error (e.g. a bad host).
        if (reported.has(`${plan.name}|deploy.labels.${e.label}`) || (e.label.includes('*') && errors.length > 0)) continue;
        fail(`deploy.labels.${e.label}`, e.message, plan.name);
      }
    } else if (result.app.policy.http !== (plan.role === 'http')) {
      fail(`deploy.labels`, `the activator would treat this service as ${result.app.policy.http ? 'HTTP' : 'a worker'}`, plan.name);
    }
  }
  if (errors.length > 0) return { ok: false, errors, warnings };

  const mainPlan = plans.find((p) => p.main);
  const urls = [mainPlan, ...plans.filter((p) => p !== mainPlan)].flatMap((p) => (p ? p.hosts.map((h) => `https://${h}`) : []));
  return {
    ok: true,
    app: appName,
    env: options.env,
    stack,
    group: defaultGroup,
    services: plans,
    urls,
    document: stackDoc,
    yaml: stringifyStack(stackDoc, `swarm-activator: stack ${stack} (app ${appName}, env ${options.env})`),
    warnings,
  };
}

/**
 * Strings a YAML 1.1 parser would read as something else (Docker's reads a plain ISO time as a
 * timestamp, yes/no/on/off as booleans, 1:30 as base 60): written double-quoted so they stay strings.
 */
const RETYPED_PLAIN =
  /^(?:[yYnN~]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|[-+]?\d[\d_]*(?:\.[\d_]*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?|0[xob][\da-fA-F_]+|[-+]?\d[\d_]*(?::[0-5]?\d)+(?:\.[\d_]*)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|\d{4}-\d\d?-\d\d?(?:[Tt ].*)?)$/;

export function stringifyStack(document: JsonMap, header?: string): string {
  const doc = new YAML.Document(document, { aliasDuplicateObjects: false });
  YAML.visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && RETYPED_PLAIN.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  const body = doc.toString({ lineWidth: 0 });
  return header ? `# ${header}\n${body}` : body;
}

/** Sets a service's deploy.labels in the form it was written (used by deploy for state labels). */
export function setServiceLabels(document: JsonMap, service: string, labels: Record<string, string>): void {
  const services = document.services;
  const svc = isMap(services) ? services[service] : undefined;
  if (!isMap(svc)) throw new Error(`no service ${service} in the stack`);
  const deploy = isMap(svc.deploy) ? svc.deploy : undefined;
  const read = readLabels(deploy?.labels);
  if (!read.ok) throw new Error(`services.${service}.deploy.labels: ${read.message}`);
  setDeployLabels(svc, upsertLabels(read.labels, labels));
}

export function setServiceReplicas(document: JsonMap, service: string, replicas: number): void {
  const services = document.services;
  const svc = isMap(services) ? services[service] : undefined;
  if (!isMap(svc)) throw new Error(`no service ${service} in the stack`);
  setReplicas(svc, replicas);
}

// --- helpers ------------------------------------------------------------------------------------

function setDeployLabels(svc: JsonMap, labels: LabelSet): void {
  if (!isMap(svc.deploy)) svc.deploy = {};
  svc.deploy.labels = writeLabels(labels);
}

function setReplicas(svc: JsonMap, replicas: number): void {
  if (!isMap(svc.deploy)) svc.deploy = {};
  svc.deploy.replicas = replicas;
}

function readReplicas(svc: JsonMap, fail: (message: string) => void): number | undefined {
  const deploy = svc.deploy;
  if (!isMap(deploy) || deploy.replicas === undefined || deploy.replicas === null) return undefined;
  const raw = deploy.replicas;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
  if (typeof raw === 'string' && /^\d+$/.test(raw.trim())) return Number(raw.trim());
  fail(`"${describeValue(raw)}" is not a whole number${typeof raw === 'string' && raw.includes('$') ? ' (variables are not expanded before labelling; write the number)' : ''}`);
  return undefined;
}

function intLabel(labels: Record<string, string>, key: string, min: number, max: number, fail: (message: string) => void): number | undefined {
  const raw = labels[key];
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    fail(`"${raw}" is not a whole number in ${min}..${max}`);
    return undefined;
  }
  return Number(raw.trim());
}

function portFromLabels(labels: Record<string, string>, fail: (key: string, message: string) => void): number | undefined {
  const own = labels[LABELS.port];
  if (own !== undefined) {
    const n = Number(own.trim());
    if (!/^\d+$/.test(own.trim()) || n < 1 || n > 65535) {
      fail(LABELS.port, `"${own}" is not a port`);
      return undefined;
    }
    return n;
  }
  const ports = new Map<string, string>();
  for (const s of parseTraefikLabels(labels, '').servicePorts) ports.set(s.port.trim(), s.label);
  if (ports.size > 1) {
    fail('traefik.http.services.*.loadbalancer.server.port', `name several ports (${[...ports.keys()].join(', ')}); set ${LABELS.port} or ${EXTENSION_KEY}.port`);
    return undefined;
  }
  const [only] = [...ports];
  if (!only) return undefined;
  const n = Number(only[0]);
  if (!/^\d+$/.test(only[0]) || n < 1 || n > 65535) {
    fail(only[1], `"${only[0]}" is not a port`);
    return undefined;
  }
  return n;
}

function readExtension(raw: Json | undefined, fail: (key: string, message: string) => void): Extension {
  if (raw === undefined || raw === null || raw === true) return {};
  if (raw === false) return { enable: false };
  if (!isMap(raw)) {
    fail('', `must be a map (keys: ${EXTENSION_KEYS.join(', ')}) or false`);
    return {};
  }
  const ext: Extension = {};
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'enable':
      case 'http':
      case 'main':
        if (typeof value !== 'boolean') fail(key, `must be true or false, got ${JSON.stringify(value)}`);
        else ext[key] = value;
        break;
      case 'port': {
        const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
        if (!Number.isInteger(n) || n < 1 || n > 65535) fail(key, `${JSON.stringify(value)} is not a port`);
        else ext.port = n;
        break;
      }
      case 'host':
        if (typeof value !== 'string') fail(key, `must be a host name or template, got ${JSON.stringify(value)}`);
        else if (checkTemplate(value, (m) => fail(key, m))) ext.host = value;
        break;
      case 'idle-timeout': {
        const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : undefined;
        if (text === undefined) fail(key, `must be a duration such as 30m, got ${JSON.stringify(value)}`);
        else if (checkDuration(text, (m) => fail(key, m))) ext.idleTimeout = text;
        break;
      }
      case 'strategy':
        if (typeof value !== 'string') fail(key, `must be one of ${STRATEGIES.join(', ')}`);
        else if (checkStrategy(value, (m) => fail(key, m))) ext.strategy = value;
        break;
      default:
        fail(key, `unknown key (known: ${EXTENSION_KEYS.join(', ')})`);
    }
  }
  return ext;
}

function checkDuration(value: string, fail: (message: string) => void): boolean {
  try {
    const ms = parseDuration(value);
    if (ms <= 0) {
      fail(`"${value}" must be longer than 0`);
      return false;
    }
    if (ms > MAX_TIMER_MS) {
      fail(`"${value}" is longer than ${MAX_TIMER_MS} ms (about 24 days), the longest a timer holds`);
      return false;
    }
    return true;
  } catch (err) {
    fail((err as Error).message);
    return false;
  }
}

function checkStrategy(value: string, fail: (message: string) => void): boolean {
  if ((STRATEGIES as readonly string[]).includes(value.trim())) return true;
  fail(`"${value}" is not one of ${STRATEGIES.join(', ')}`);
  return false;
}

function checkTemplate(template: string, fail: (message: string) => void): boolean {
  const unknown = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1] ?? '').filter((v) => !(TEMPLATE_VARS as readonly string[]).includes(v));
  if (unknown.length > 0) {
    fail(`unknown placeholder {${unknown[0]}} in "${template}" (use ${TEMPLATE_VARS.map((v) => `{${v}}`).join(', ')})`);
    return false;
  }
  return true;
}

function renderTemplate(template: string, vars: Record<(typeof TEMPLATE_VARS)[number], string>): string {
  return template.replace(/\{([a-z]+)\}/g, (whole, name: string) => (Object.hasOwn(vars, name) ? vars[name as keyof typeof vars] : whole));
}

/** A compose service name as a DNS label: lowercase, anything else → "-". */
function dnsSafe(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

interface ForeignObject {
  kind: 'router' | 'service';
  name: string;
  prefix: string;
  detail: string;
}

/** The user's own HTTP routers/services on a service we route: Traefik would see two of each. */
function foreignTraefikObjects(labels: Record<string, string>, routers: { http: string; https: string }, service: string): ForeignObject[] {
  const found = new Map<string, ForeignObject>();
  for (const [key, value] of Object.entries(labels)) {
    const r = /^traefik\.http\.routers\.([^.]+)\./.exec(key);
    if (r && r[1] !== routers.http && r[1] !== routers.https) {
      const name = r[1] as string;
      const prefix = `traefik.http.routers.${name}.`;
      const existing = found.get(prefix);
      const detail = key === `${prefix}rule` ? ` (rule ${value})` : '';
      if (!existing) found.set(prefix, { kind: 'router', name, prefix, detail });
      else if (detail && !existing.detail) existing.detail = detail;
    }
    const s = /^traefik\.http\.services\.([^.]+)\./.exec(key);
    if (s && s[1] !== service) {
      const name = s[1] as string;
      const prefix = `traefik.http.services.${name}.`;
      if (!found.has(prefix)) found.set(prefix, { kind: 'service', name, prefix, detail: '' });
    }
  }
  return [...found.values()];
}

/** Makes sure the shared network is declared external at the top level; returns the key services use. */
function ensureExternalNetwork(stackDoc: JsonMap, network: string, fail: (key: string, message: string) => void): string {
  let networks = stackDoc.networks;
  if (networks === undefined || networks === null) {
    networks = {};
    stackDoc.networks = networks;
  }
  if (!isMap(networks)) {
    fail('networks', 'must be a map');
    return network;
  }
  for (const [key, def] of Object.entries(networks)) {
    if (!isMap(def)) continue;
    const external = def.external === true || isMap(def.external);
    const realName = typeof def.name === 'string' ? def.name : isMap(def.external) && typeof def.external.name === 'string' ? def.external.name : key;
    if (realName === network && external) return key;
  }
  if (Object.hasOwn(networks, network)) {
    fail(`networks.${network}`, `must be "external: true": it is the shared network Traefik and the activator reach services on (otherwise deploy would create a private <stack>_${network} network instead)`);
    return network;
  }
  networks[network] = { external: true };
  return network;
}

