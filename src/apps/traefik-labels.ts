/**
 * A service's Traefik labels → its routers and the middlewares it defines, decoded as Traefik's
 * label decoder (paerser) does: keys are read in sorted order, split at dots (`a[0]` becomes
 * `a`, `[0]`), and every name (router, middleware, type, option key) matches case-insensitively,
 * the first spelling kept. Lists (entrypoints, middlewares, sans) are comma-separated.
 */
import type { LabelTree, TraefikMiddleware, TraefikRouter, TraefikRouterTls } from './model.js';

/** Traefik v3's HTTP middleware types, by their canonical spelling. */
export const MIDDLEWARE_TYPES = [
  'addPrefix',
  'basicAuth',
  'buffering',
  'chain',
  'circuitBreaker',
  'compress',
  'contentType',
  'digestAuth',
  'errors',
  'forwardAuth',
  'grpcWeb',
  'headers',
  'inFlightReq',
  'ipAllowList',
  'ipWhiteList',
  'passTLSClientCert',
  'plugin',
  'rateLimit',
  'redirectRegex',
  'redirectScheme',
  'replacePath',
  'replacePathRegex',
  'retry',
  'stripPrefix',
  'stripPrefixRegex',
] as const;

const CANONICAL_TYPE = new Map<string, string>(MIDDLEWARE_TYPES.map((t) => [t.toLowerCase(), t]));

/** A label Traefik would reject or we cannot read; the rest of the labels are still decoded. */
export interface TraefikLabelProblem {
  label: string;
  message: string;
}

/** A Traefik service's load-balancer port (`traefik.http.services.<name>.loadbalancer.server.port`). */
export interface TraefikServicePort {
  name: string;
  /** The label value as written. */
  port: string;
  /** The label key that set it, as written (for error messages). */
  label: string;
}

export interface TraefikLabels {
  routers: TraefikRouter[];
  middlewares: TraefikMiddleware[];
  /** Services that name a load-balancer port (the activator's policy reads these). */
  servicePorts: TraefikServicePort[];
  problems: TraefikLabelProblem[];
}

/** The canonical name of a middleware type, or undefined when Traefik v3 has no such type. */
export function canonicalMiddlewareType(type: string): string | undefined {
  return CANONICAL_TYPE.get(type.toLowerCase());
}

/** "a, b,,c" → ['a', 'b', 'c']. */
export function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Decodes `traefik.http.routers.*` and `traefik.http.middlewares.*` of one service's labels. */
export function parseTraefikLabels(labels: Record<string, string>, definedOn: string): TraefikLabels {
  const problems: TraefikLabelProblem[] = [];
  const root: TreeNode = { name: 'traefik', children: [] };
  for (const key of Object.keys(labels).sort()) {
    if (!/^traefik\.http\./i.test(key)) continue;
    const path = labelPath(key);
    if (path === undefined) {
      problems.push({ label: key, message: 'empty or bracket-first segment in the label key' });
      continue;
    }
    insert(root, path.slice(1), labels[key] as string, key);
  }
  const http = child(root, 'http');
  const routers = children(child(http, 'routers')).map((node) => routerFrom(node, problems));
  const middlewares = children(child(http, 'middlewares')).flatMap((node) => middlewareFrom(node, definedOn, problems));
  const servicePorts = children(child(http, 'services')).flatMap((node) => {
    const port = child(child(child(node, 'loadbalancer'), 'server'), 'port');
    return port?.value !== undefined && port.key !== undefined ? [{ name: node.name, port: port.value, label: port.key }] : [];
  });
  return { routers, middlewares, servicePorts, problems };
}

interface TreeNode {
  name: string;
  value?: string;
  /** The label that set `value`. */
  key?: string;
  children: TreeNode[];
}

/** Split as paerser does: at dots, with `name[0]` → `name`, `[0]`. */
function labelPath(key: string): string[] | undefined {
  const parts: string[] = [];
  for (const segment of key.split('.')) {
    if (segment === '' || segment.startsWith('[')) return undefined;
    const bracket = segment.indexOf('[');
    if (segment.endsWith(']') && bracket > 0) parts.push(segment.slice(0, bracket), segment.slice(bracket));
    else parts.push(segment);
  }
  return parts;
}

function insert(node: TreeNode, path: string[], value: string, key: string): void {
  let current = node;
  for (const name of path) {
    let next = child(current, name);
    if (next === undefined) {
      next = { name, children: [] };
      current.children.push(next);
    }
    current = next;
  }
  current.value = value;
  current.key = key;
}

function child(node: TreeNode | undefined, name: string): TreeNode | undefined {
  const lower = name.toLowerCase();
  return node?.children.find((c) => c.name.toLowerCase() === lower);
}

function children(node: TreeNode | undefined): TreeNode[] {
  return node?.children ?? [];
}

function routerFrom(node: TreeNode, problems: TraefikLabelProblem[]): TraefikRouter {
  const at = (suffix: string): string => `traefik.http.routers.${node.name}.${suffix}`;
  let priority: number | undefined;
  const priorityText = child(node, 'priority')?.value;
  if (priorityText !== undefined) {
    if (/^-?\d+$/.test(priorityText.trim())) priority = Number(priorityText.trim());
    else problems.push({ label: at('priority'), message: `"${priorityText}" is not a whole number` });
  }
  const service = child(node, 'service')?.value?.trim();
  return {
    name: node.name,
    rule: child(node, 'rule')?.value ?? '',
    priority,
    entryPoints: commaList(child(node, 'entrypoints')?.value ?? ''),
    tls: tlsFrom(child(node, 'tls')),
    middlewares: commaList(child(node, 'middlewares')?.value ?? ''),
    service: service || undefined,
  };
}

function tlsFrom(node: TreeNode | undefined): TraefikRouterTls | undefined {
  if (node === undefined) return undefined;
  // `tls=false` alone leaves the router without TLS, as Traefik reads a false pointer-struct.
  if (node.children.length === 0 && node.value?.trim().toLowerCase() === 'false') return undefined;
  const certResolver = child(node, 'certresolver')?.value?.trim();
  const options = child(node, 'options')?.value?.trim();
  const domains = children(child(node, 'domains'))
    .filter((d) => /^\[\d+\]$/.test(d.name))
    .sort((a, b) => index(a.name) - index(b.name))
    .map((d) => ({ main: child(d, 'main')?.value?.trim() ?? '', sans: commaList(child(d, 'sans')?.value ?? '') }));
  return { certResolver: certResolver || undefined, options: options || undefined, domains };
}

function index(bracketed: string): number {
  return Number(bracketed.slice(1, -1));
}

function middlewareFrom(node: TreeNode, definedOn: string, problems: TraefikLabelProblem[]): TraefikMiddleware[] {
  const [typeNode, ...others] = node.children;
  if (typeNode === undefined) {
    problems.push({ label: `traefik.http.middlewares.${node.name}`, message: 'the middleware names no type' });
    return [];
  }
  if (others.length > 0) {
    problems.push({
      label: `traefik.http.middlewares.${node.name}`,
      message: `the middleware has several types (${node.children.map((c) => c.name).join(', ')}); Traefik refuses it`,
    });
  }
  return [{ name: node.name, type: canonicalMiddlewareType(typeNode.name) ?? typeNode.name, options: treeOf(typeNode), definedOn }];
}

/** A node's children as a LabelTree; a key that is both a value and a parent keeps its children. */
function treeOf(node: TreeNode): LabelTree {
  const tree: LabelTree = {};
  for (const c of node.children) tree[c.name] = c.children.length > 0 ? treeOf(c) : (c.value ?? '');
  return tree;
}
