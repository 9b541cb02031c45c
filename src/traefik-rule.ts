/**
 * Host names named by a Traefik router rule: Host(`a`) || Host(`b`), v2's Host(`a`, `b`) too.
 * HostRegexp and HostSNI are not hosts we can match exactly, so they are ignored.
 */
const HOST_CALL = /(?<![A-Za-z])Host\(([^)]*)\)/g;
const QUOTED = /`([^`]*)`|"([^"]*)"/g;

export function hostsFromRule(rule: string): string[] {
  const hosts: string[] = [];
  for (const call of rule.matchAll(HOST_CALL)) {
    for (const arg of (call[1] ?? '').matchAll(QUOTED)) {
      const host = (arg[1] ?? arg[2] ?? '').trim().toLowerCase();
      if (host) hosts.push(host);
    }
  }
  return hosts;
}

/** Traefik's normalisation of Swarm names for its service/router names and metric labels. */
export function normaliseName(name: string): string {
  return name.replace(/[^a-zA-Z0-9]+/g, '-');
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
export function isValidHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  return host.split('.').every((label) => DNS_LABEL.test(label));
}
