// The hot-path origin: a plain node:http server on loopback answering every request with a small
// fixed body (the same app for all four runs). Env: PORT.
import http from 'node:http';

const body = Buffer.from('hello from the origin\n');
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
