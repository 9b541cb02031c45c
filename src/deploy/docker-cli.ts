/**
 * The docker CLI, for the two commands whose semantics we want exactly as Docker defines them:
 * `docker stack deploy` (Docker's own compose parser: networks, configs, secrets, volumes, deploy
 * keys, variable interpolation) and `docker stack rm`. It honours DOCKER_HOST like dockerode does.
 */
import { spawn } from 'node:child_process';
import { DeployError } from './errors.js';

export type ResolveImage = 'always' | 'changed' | 'never';

export interface StackDeployOptions {
  /** Directory relative paths in the file resolve against (the stack file's directory). */
  cwd: string;
  prune: boolean;
  resolveImage?: ResolveImage;
  withRegistryAuth?: boolean;
}

export interface DockerCli {
  /** `docker stack deploy -c - <stack>` with the YAML on stdin; resolves with the CLI's output. */
  stackDeploy(stack: string, yaml: string, options: StackDeployOptions): Promise<string>;
  /** `docker stack rm <stack>`; resolves with the output, rejects with the CLI's error text. */
  stackRm(stack: string): Promise<string>;
}

export interface DockerCliOptions {
  /** Path of the docker binary; default SWARM_ACTIVATOR_DOCKER_CLI, else "docker" on PATH. */
  bin?: string;
  env?: NodeJS.ProcessEnv;
}

export function createDockerCli(options: DockerCliOptions = {}): DockerCli {
  const env = options.env ?? process.env;
  const bin = options.bin ?? env.SWARM_ACTIVATOR_DOCKER_CLI ?? 'docker';
  return {
    stackDeploy(stack, yaml, o) {
      const args = ['stack', 'deploy', '--compose-file', '-', '--detach=true'];
      if (o.prune) args.push('--prune');
      if (o.resolveImage) args.push('--resolve-image', o.resolveImage);
      if (o.withRegistryAuth) args.push('--with-registry-auth');
      args.push(stack);
      return run(bin, args, { cwd: o.cwd, env, stdin: yaml });
    },
    stackRm(stack) {
      return run(bin, ['stack', 'rm', stack], { cwd: process.cwd(), env });
    },
  };
}

function run(bin: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: o.cwd, env: o.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new DeployError(`docker CLI "${bin}" not found (needed for docker stack deploy/rm); install it or set SWARM_ACTIVATOR_DOCKER_CLI`, { cause: err }));
      } else reject(new DeployError(`could not run ${bin} ${args.join(' ')}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new DeployError(`${bin} ${args.filter((a) => a !== '-').join(' ')} failed (exit ${code}): ${out.trim() || 'no output'}`));
    });
    child.stdin.on('error', () => undefined); // EPIPE when docker exits early; the exit code tells
    child.stdin.end(o.stdin ?? '');
  });
}
