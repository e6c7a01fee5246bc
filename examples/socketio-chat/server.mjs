// Serves the example page and the socket.io-client browser bundle (from npm, no CDN),
// and passes /socket.io/ (long-polling and WebSocket) and /api/ through to Socket-Hub,
// so the page and the server share one origin. No dependencies beyond Node.
//   SOCKET_HUB_URL  where Socket-Hub listens (default http://127.0.0.1:8080)
//   PORT            where this page is served (default 3000)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const hub = new URL(process.env.SOCKET_HUB_URL ?? 'http://127.0.0.1:8080');
const port = Number(process.env.PORT ?? 3000);
const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/socket.io.min.js': ['node_modules/socket.io-client/dist/socket.io.min.js', 'text/javascript'],
};

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const file = files[path];
  if (file) {
    res.writeHead(200, { 'content-type': file[1] });
    res.end(readFileSync(join(here, file[0])));
    return;
  }
  // Everything else is Socket-Hub's: the Host header is kept, so the server sees the
  // page's own origin.
  const upstream = http.request(
    { host: hub.hostname, port: hub.port || 80, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`Socket-Hub is not answering at ${hub.origin}: ${err.message}\n`);
  });
  req.pipe(upstream);
});

// WebSocket upgrades: replay the request line and headers, then splice the sockets.
server.on('upgrade', (req, socket, head) => {
  const upstream = net.connect(Number(hub.port || 80), hub.hostname, () => {
    const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
    upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
    upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
});

server.listen(port, '127.0.0.1', () => {
  console.log(`Socket.IO chat example on http://127.0.0.1:${port} (Socket-Hub at ${hub.origin})`);
});
