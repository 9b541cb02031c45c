// Baseline for the unknown-host rate: a bare fastify app whose every request is a 404, no logging.
// Runs as a plain process (repo node_modules) or as a Swarm service in swarm-activator:dev with this
// file mounted at /app/bare-404.mjs (the image's node_modules). Env: PORT.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'SA_UNKNOWN_HOST', status: 404, message: `no app is registered for host "${request.headers.host}"` }));
await app.listen({ host: process.env.HOST ?? '0.0.0.0', port: Number(process.env.PORT ?? 8080) });
process.on('SIGTERM', () => process.exit(0));
