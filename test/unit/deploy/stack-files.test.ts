/**
 * stack/traefik.yml (with its production defaults, as `docker stack deploy` interpolates them) and
 * stack/activator.yml (as written): parse them and check the parts the activator depends on. The real
 * Traefik runs stack/traefik.yml itself in test/e2e/traefik*.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { DEPLOY_DEFAULTS } from '../../../src/deploy/label-stack.js';

const SA_TRAEFIK_VERSION = /^SA_TRAEFIK_VERSION=(\S+)$/m.exec(readFileSync(join(import.meta.dirname, '..', '..', '..', 'scripts', 'tools.sh'), 'utf8'))?.[1] ?? '?';

interface Service {
  image: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  networks?: string[];
  ports?: Array<{ target: number; published: number; mode?: string }>;
  healthcheck?: { test: string[] };
  secrets?: string[];
  deploy: { replicas?: number; mode?: string; labels?: string[]; placement?: { constraints?: string[] }; resources?: { limits?: { memory?: string } } };
}
interface Stack {
  services: Record<string, Service>;
  networks: Record<string, { external?: boolean; internal?: boolean }>;
  secrets?: Record<string, { external?: boolean; name?: string }>;
}

const root = join(import.meta.dirname, '..', '..', '..', 'stack');
/** `${VAR:-default}` / `${VAR:?message}` with no VAR set, as docker stack deploy reads them (`$$` stays). */
const withDefaults = (text: string) => text.replace(/(?<!\$)\$\{([A-Z_]+):([-?])([^}]*)\}/g, (_, name: string, kind: string, rest: string) => (kind === '-' ? rest : `<${name}>`));
const load = (file: string, interpolate = false) => {
  const text = readFileSync(join(root, file), 'utf8');
  return YAML.parse(interpolate ? withDefaults(text) : text) as Stack;
};
const labelMap = (s: Service) => Object.fromEntries((s.deploy.labels ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
/** "--a.b=c" args → { "a.b": "c" } (keys as written). */
const args = (s: Service) => Object.fromEntries((s.command ?? []).map((a) => a.replace(/^--/, '')).map((a) => [a.split('=')[0] as string, a.slice(a.indexOf('=') + 1)]));

t.test('traefik.yml', async (t) => {
  const stack = load('traefik.yml', true);
  const traefik = stack.services.traefik as Service;
  t.match(traefik.image, /^traefik:v3\.7\.\d+$/, 'Traefik v3.7, an exact version');
  t.match(traefik.image, new RegExp(`:v${SA_TRAEFIK_VERSION.replace(/\./g, '\\.')}$`), 'the version the tests run (scripts/tools.sh)');
  const a = args(traefik);
  t.equal(a['providers.swarm.exposedByDefault'], 'false', 'swarm provider, opt-in');
  t.equal(a['providers.swarm.network'], DEPLOY_DEFAULTS.network, 'swarm provider network = the network deploy attaches apps to');
  t.equal(a['entryPoints.http.address'], ':80');
  t.equal(a['entryPoints.https.address'], ':443');
  t.equal(a['entryPoints.http.http.redirections.entryPoint.to'], 'https', 'http -> https');
  t.equal(a['entryPoints.http.http.redirections.entryPoint.scheme'], 'https');
  t.ok(a['certificatesResolvers.le.acme.storage'], 'ACME resolver "le" with storage');
  t.equal(a['certificatesResolvers.le.acme.caServer'], 'https://acme-v02.api.letsencrypt.org/directory', "Let's Encrypt unless a test overrides it");
  t.equal(a['certificatesResolvers.le.acme.httpChallenge.entryPoint'], 'http');
  t.equal(a['providers.http.endpoint'], 'http://tasks.swarm-activator_activator:8081/traefik/dynamic-config', "the activator's provider endpoint: every task of stack/activator.yml's service, its admin port");
  t.equal(a['providers.http.headers.X-Activator-Provider-Token'], '<ACTIVATOR_PROVIDER_TOKEN>', 'the provider token, required at deploy time');
  t.ok(traefik.volumes?.some((v) => v.endsWith(':/certificates')), 'ACME storage on a volume');
  t.equal(a['metrics.prometheus'], 'true', 'Prometheus metrics');
  t.equal(a['metrics.prometheus.addServicesLabels'], 'true');
  t.equal(a['metrics.prometheus.entryPoint'], 'metrics');
  t.equal(a['entryPoints.metrics.address'], ':8082', 'metrics where the activator reads them');
  t.same(traefik.ports?.map((p) => [p.target, p.published, p.mode]), [
    [80, 80, 'host'],
    [443, 443, 'host'],
  ]);
  t.ok(traefik.volumes?.some((v) => v.startsWith('/var/run/docker.sock:')), 'Docker socket for the provider');
  t.ok(traefik.deploy.placement?.constraints?.includes('node.role == manager'));

  const l = labelMap(traefik);
  t.equal(l['traefik.enable'], 'true');
  t.ok(l['traefik.http.middlewares.non-www-redirect-secure.redirectregex.regex'], 'the shared middleware lives on the always-on Traefik service');
  t.equal(l['traefik.http.middlewares.non-www-redirect-secure.redirectregex.replacement'], 'https://$${1}', '$ escaped for docker stack deploy');
  t.equal(DEPLOY_DEFAULTS.middlewares[0], 'non-www-redirect-secure@swarm', 'deploy references it in the swarm provider namespace');
  for (const ep of ['http', 'https']) {
    const r = `traefik.http.routers.activator-fallback-${ep}`;
    t.equal(l[`${r}.rule`], 'PathPrefix(`/`)', `${ep}: catch-all rule`);
    t.equal(l[`${r}.priority`], '1', `${ep}: priority 1`);
    t.equal(l[`${r}.entrypoints`], ep, `${ep}: entrypoint`);
    t.equal(l[`${r}.service`], 'swarm-activator@swarm', `${ep}: to the activator`);
  }
  t.equal(l['traefik.http.routers.activator-fallback-https.tls'], 'true');
  t.same(stack.networks[DEPLOY_DEFAULTS.network], { external: true });

  // The redirect regex (Go RE2 and JS agree on this subset) redirects only what needs it.
  const regex = new RegExp(l['traefik.http.middlewares.non-www-redirect-secure.redirectregex.regex']!.replace(/\$\$/g, '$'));
  const redirect = (url: string) => (regex.test(url) ? url.replace(regex, 'https://$1') : null);
  t.equal(redirect('http://www.shop.example.com/a?b=1'), 'https://shop.example.com/a?b=1');
  t.equal(redirect('http://shop.example.com/'), 'https://shop.example.com/');
  t.equal(redirect('https://www.shop.example.com/x'), 'https://shop.example.com/x');
  t.equal(redirect('https://shop.example.com/x'), null, 'no redirect loop on the canonical URL');
});

t.test('activator.yml', async (t) => {
  const stack = load('activator.yml');
  const act = stack.services.activator as Service;
  t.match(act.image, /swarm-activator/);
  t.equal(act.deploy.replicas, 2, 'two replicas for HA');
  t.ok(act.deploy.placement?.constraints?.includes('node.role == manager'), 'on a manager');
  t.notOk(act.volumes?.some((v) => v.includes('docker.sock')), 'no Docker socket in the activator');
  t.equal(act.environment?.ACTIVATOR_DOCKER_HOST, 'tcp://docker-api:2375', 'the Docker API through the allow-list proxy');
  t.ok(act.networks?.includes('docker-api'), 'on the proxy network');
  t.match(act.deploy.resources?.limits?.memory, /^\d+M$/, 'a memory limit');
  const proxy = stack.services['docker-api'] as Service;
  t.match(proxy.image, /docker-api/);
  t.ok(proxy.volumes?.includes('/var/run/docker.sock:/var/run/docker.sock'), 'the proxy has the socket');
  t.same(proxy.networks, ['docker-api'], 'and only its own network');
  t.ok(proxy.deploy.placement?.constraints?.includes('node.role == manager'), 'on managers');
  t.equal(stack.networks['docker-api']?.internal, true, 'an internal network');
  t.equal(act.environment?.ACTIVATOR_REDIS_URL, 'redis://redis:6379', 'Redis of the same stack');
  t.equal(act.environment?.ACTIVATOR_REDIS_PASSWORD_FILE, '/run/secrets/redis_password', 'Redis password from a secret file');
  t.ok(act.secrets?.includes('redis_password'));
  const redis = stack.services.redis as Service;
  t.ok(redis.secrets?.includes('redis_password'), 'redis gets the same secret');
  t.match(redis.command?.join(' '), /requirepass \$\$\(cat \/run\/secrets\/redis_password\)/, 'and requires it');
  t.equal(stack.secrets?.redis_password?.external, true, 'created once by ops');
  t.equal(act.environment?.ACTIVATOR_NETWORK, DEPLOY_DEFAULTS.network);
  t.equal(act.environment?.ACTIVATOR_TRAEFIK_METRICS_URL, 'http://traefik:8082/metrics');
  t.match(act.healthcheck?.test.join(' '), /127\.0\.0\.1:8081\/healthz/, 'healthcheck on the admin port');
  t.ok(act.networks?.includes(DEPLOY_DEFAULTS.network), 'on the shared network');
  const l = labelMap(act);
  t.equal(l['traefik.http.services.swarm-activator.loadbalancer.server.port'], '8080', 'the service the catch-all routers use');
  t.equal(l['traefik.swarm.network'], DEPLOY_DEFAULTS.network);

  // The dashboard: its own router on the ops host, authenticated by Traefik, to the admin port.
  t.match(l['traefik.http.routers.activator-admin.rule'], /^Host\(`\$\{ACTIVATOR_DASHBOARD_HOST:-[^}]+\}`\)$/, 'on the ops host only');
  t.equal(l['traefik.http.routers.activator-admin.service'], 'swarm-activator-admin');
  t.equal(l['traefik.http.services.swarm-activator-admin.loadbalancer.server.port'], '8081', 'the admin port');
  t.equal(l['traefik.http.routers.activator-admin.tls'], 'true');
  const middlewares = (l['traefik.http.routers.activator-admin.middlewares'] ?? '').split(',');
  t.ok(middlewares.includes('activator-admin-auth'), 'behind basic auth');
  t.match(l['traefik.http.middlewares.activator-admin-auth.basicauth.users'], /^\$\{ACTIVATOR_DASHBOARD_USERS:\?/, 'users required at deploy time');
  t.ok(middlewares.includes('activator-admin-allow') && l['traefik.http.middlewares.activator-admin-allow.ipallowlist.sourcerange'], 'and a source allow-list');
  const raw = stack as unknown as { services: { activator: { secrets?: string[] } }; secrets?: Record<string, { external?: boolean }> };
  t.equal(act.environment?.ACTIVATOR_ADMIN_TOKEN_FILE, '/run/secrets/activator-admin-token', 'the operator token from a file');
  t.ok(raw.services.activator.secrets?.includes('activator-admin-token'), 'mounted as a Swarm secret');
  t.equal(raw.secrets?.['activator-admin-token']?.external, true, 'made by ops before the deploy, never in the file');
  t.equal(act.environment?.ACTIVATOR_TRAEFIK_PROVIDER_TOKEN_FILE, '/run/secrets/activator-provider-token', "Traefik's provider token from a file");
  t.ok(raw.services.activator.secrets?.includes('activator-provider-token') && raw.secrets?.['activator-provider-token']?.external === true, 'a Swarm secret made by ops');
});

t.test('no "-" in a ${VAR:?message}: docker stack deploy 20.10 reads the rest as a default', async (t) => {
  for (const file of ['traefik.yml', 'activator.yml']) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(/\$\{([A-Z_]+):\?([^}]*)\}/g)) t.notMatch(m[2], /-/, `${file}: \${${m[1]}:?...} has no "-"`);
  }
});
