// The Node ceiling: about the smallest correct reverse proxy on undici's Pool. Env: PORT, ORIGIN_PORT.
import http from 'node:http';
import { Pool } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const strip = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k)));
const pool = new Pool(`http://127.0.0.1:${process.env.ORIGIN_PORT}`, { connections: 256, pipelining: 1 });

const server = http.createServer(async (req, res) => {
  try {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const up = await pool.request({ path: req.url, method: req.method, headers: strip(req.headers), body: hasBody ? req : null });
    res.writeHead(up.statusCode, strip(up.headers));
    for await (const chunk of up.body) res.write(chunk);
    res.end();
  } catch {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
