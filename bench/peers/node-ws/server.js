'use strict';
// Minimal chat hub on `ws`, speaking the bench peer protocol (../README.md).
// Keeps nothing: rooms are in-memory sets of live sockets, messages are only relayed.
//
// Usage: node server.js [--port 9001]   (or PORT=9001); binds 127.0.0.1 only.

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

function portFromArgs() {
  const i = process.argv.indexOf('--port');
  const raw = i >= 0 ? process.argv[i + 1] : process.env.PORT || '9001';
  const port = Number.parseInt(raw, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid port: ${raw}`);
    process.exit(2);
  }
  return port;
}

/** room name -> Set of sockets joined to it */
const rooms = new Map();

function send(ws, obj) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}

function join(ws, room) {
  let members = rooms.get(room);
  if (!members) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  ws.rooms.add(room);
  send(ws, { type: 'joined', room });
}

function leaveAll(ws) {
  for (const room of ws.rooms) {
    const members = rooms.get(room);
    if (!members) continue;
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  }
  ws.rooms.clear();
}

function broadcast(ws, frame) {
  const members = rooms.get(frame.room);
  if (!members || !ws.rooms.has(frame.room)) {
    send(ws, { type: 'error', id: frame.id, error: 'not_joined' });
    return;
  }
  // Serialize once, write to every member (sender included).
  const text = JSON.stringify({
    type: 'msg',
    room: frame.room,
    from: ws.user,
    id: frame.id,
    body: frame.body,
  });
  for (const member of members) {
    if (member.readyState === WebSocket.OPEN) member.send(text);
  }
  send(ws, { type: 'ack', id: frame.id });
}

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/ws') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.user = url.searchParams.get('user') || 'anonymous';
    ws.rooms = new Set();
    wss.emit('connection', ws);
  });
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      send(ws, { type: 'error', error: 'malformed_json' });
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.room !== 'string') {
      send(ws, { type: 'error', error: 'invalid_input' });
      return;
    }
    if (frame.type === 'join') join(ws, frame.room);
    else if (frame.type === 'send') broadcast(ws, frame);
    else send(ws, { type: 'error', error: 'unknown_type' });
  });
  ws.on('close', () => leaveAll(ws));
  ws.on('error', () => leaveAll(ws));
});

server.listen({ host: '127.0.0.1', port: portFromArgs(), backlog: 4096 }, () => {
  const { port } = server.address();
  console.log(`node-ws hub listening on 127.0.0.1:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
