// Reference for the hot-path bench: plain fastify + @fastify/reply-from with its defaults, no hooks,
// no logging (the calibration figure "plain fastify + @fastify/reply-from").
// Env: PORT, ORIGIN_PORT.
import replyFrom from '@fastify/reply-from';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
await app.register(replyFrom, { base: `http://127.0.0.1:${process.env.ORIGIN_PORT}`, disableRequestLogging: true });
app.all('/*', (request, reply) => reply.from(request.url));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => process.exit(0));
