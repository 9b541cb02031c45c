/**
 * The three-node swarm of scripts/multinode-up.sh: one dockerd per network namespace on a bridge
 * of its own. Node i answers on its own socket and at 10.214.0.1i (host-mode published ports).
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';
import { dockerOptionsFromHost } from '../../src/swarm/dockerode-swarm.js';
import type { SwarmTarget } from './swarm.js';

export interface SwarmNode extends SwarmTarget {
  index: number;
  nodeId: string;
  /** Cuts the node off the network (its link into the bridge down), as a crashed VPS would be. */
  disconnect(): void;
  reconnect(): void;
}

function readEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_0-9]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1] as string] = (m[2] as string).replace(/^'(.*)'$/, '$1');
  }
  return out;
}

/** The three nodes, or an Error saying why they are not there. */
export function multinodeSwarm(): SwarmNode[] | Error {
  const file = `${process.env.SA_STATE_DIR ?? '/var/tmp/swarm-activator'}/multinode/env`;
  let env: Record<string, string>;
  try {
    env = readEnv(file);
  } catch (err) {
    return new Error(`the three-node swarm is not up (${file}: ${(err as Error).message}); scripts/test.sh starts it with scripts/multinode-up.sh`);
  }
  return [1, 2, 3].map((index) => {
    const dockerHost = env[`SA_MN_DOCKER_HOST_${index}`] ?? '';
    const link = `sa-mn${index}-h`;
    return {
      index,
      nodeId: env[`SA_MN_NODE_ID_${index}`] ?? '',
      docker: new Docker(dockerOptionsFromHost(dockerHost)),
      dockerHost,
      network: env.SA_MN_NETWORK ?? 'sa-mn-net',
      address: env[`SA_MN_IP_${index}`] ?? '',
      disconnect: () => void execFileSync('ip', ['link', 'set', link, 'down']),
      reconnect: () => void execFileSync('ip', ['link', 'set', link, 'up']),
    };
  });
}
