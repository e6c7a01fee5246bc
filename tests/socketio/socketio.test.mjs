// Socket.IO at /socket.io/ against the real server, with the official socket.io-client:
// chat, interop with native /ws clients (same seqs), resume after a reconnect, refused
// handshakes, the long-polling transport, and three instances over PostgreSQL + Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api,
  connectError,
  connectIo,
  connectWs,
  createDatabase,
  newSecret,
  rand,
  register,
  request,
  signToken,
  startRedis,
  startServer,
} from './support.mjs';

const seqsOf = (messages) => messages.map((m) => m.seq);

describe('one instance', () => {
  let server;
  const secret = newSecret();
  const clients = [];
  before(async () => {
    server = await startServer({ args: ['--jwt-secret', secret, '--register-burst', '100'] });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });
  const io = async (token, opts = {}) => {
    const client = await connectIo(server.base, { auth: { token }, ...opts });
    clients.push(client.socket);
    return client;
  };

  test('two Socket.IO clients chat in a room created by name', async () => {
    const alice = await register(server.base, 'alice');
    const bob = await register(server.base, 'bob');
    const room = `lobby-${rand()}`;
    const a = await io(alice.token);
    const b = await io(bob.token);

    const joinedA = await request(a.socket, 'joinRoom', { room });
    assert.equal(joinedA.ok, true, JSON.stringify(joinedA));
    const [historyA] = await a.inbox.until('chat-history');
    assert.equal(historyA.room_id, joinedA.room_id);
    assert.deepEqual(historyA.messages, []);

    // The seed's style: the room's name alone.
    const joinedB = await request(b.socket, 'joinRoom', room);
    assert.equal(joinedB.room_id, joinedA.room_id, 'the same name is the same room');
    await b.inbox.until('chat-history');
    const [note] = await a.inbox.until('notification', (n) => n.type === 'join' && n.user.id === bob.user.id);
    assert.equal(note.room_id, joinedA.room_id);

    const sent = await request(a.socket, 'chatMessage', { room, message: 'hola', client_msg_id: 'a-1' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    assert.equal(sent.message.seq, 1);
    assert.equal(sent.message.content, 'hola');
    const [got] = await b.inbox.until('chatMessage', (m) => m.client_msg_id === 'a-1');
    assert.deepEqual(got, sent.message);

    const reply = await request(b.socket, 'chatMessage', { room: joinedB.room_id, message: 'hi alice' });
    assert.equal(reply.message.seq, 2);
    const [echo] = await a.inbox.until('chatMessage', (m) => m.seq === 2);
    assert.equal(echo.user.username, bob.user.username);

    // A third client joining later gets both as history.
    const carol = await register(server.base, 'carol');
    const c = await io(carol.token);
    await request(c.socket, 'joinRoom', { room });
    const [historyC] = await c.inbox.until('chat-history');
    assert.deepEqual(seqsOf(historyC.messages), [1, 2]);

    // Leaving tells the others.
    const left = await request(b.socket, 'leaveRoom', { room });
    assert.equal(left.ok, true);
    await a.inbox.until('notification', (n) => n.type === 'leave' && n.user.id === bob.user.id);

    // Bad requests are answered, not dropped.
    const empty = await request(a.socket, 'chatMessage', { room, message: '   ' });
    assert.equal(empty.ok, false);
    assert.equal(empty.error.code, 'invalid_input');
    const unjoined = await request(b.socket, 'typing', { room });
    assert.equal(unjoined.error.code, 'not_joined');
  });

  test('a native /ws client and a Socket.IO client see each other with the same seqs', async () => {
    const alice = await register(server.base, 'alice');
    const bob = await register(server.base, 'bob');
    const room = `mixed-${rand()}`;
    const a = await io(alice.token);
    const joined = await request(a.socket, 'joinRoom', { room });
    await a.inbox.until('chat-history');

    const b = await connectWs(server.base, bob.token);
    clients.push(b);
    b.send({ type: 'join_room', room_id: joined.room_id });
    await b.until((f) => f.type === 'room_joined');

    const fromIo = await request(a.socket, 'chatMessage', { room, message: 'from socket.io' });
    const [chat] = await b.until((f) => f.type === 'chat' && f.message.content === 'from socket.io');
    assert.equal(chat.message.seq, fromIo.message.seq);
    assert.equal(chat.message.id, fromIo.message.id);

    b.send({ type: 'message_send', room_id: joined.room_id, client_msg_id: 'ws-1', content: 'from /ws' });
    const [ack] = await b.until((f) => f.type === 'ack' && f.client_msg_id === 'ws-1');
    const [seen] = await a.inbox.until('chatMessage', (m) => m.client_msg_id === 'ws-1');
    assert.equal(seen.seq, ack.message.seq);
    assert.equal(seen.seq, fromIo.message.seq + 1);

    // REST too.
    const rest = await api(server.base, 'POST', `/api/v1/rooms/${joined.room_id}/messages`, {
      token: bob.token,
      body: { content: 'from REST' },
    });
    assert.equal(rest.status, 201);
    const [viaRest] = await a.inbox.until('chatMessage', (m) => m.content === 'from REST');
    assert.equal(viaRest.seq, rest.body.seq);

    // Typing crosses protocols.
    await request(a.socket, 'typing', { room });
    await b.until((f) => f.type === 'typing' && f.user.id === alice.user.id);
  });

  test('a client that reconnects with its last seq gets exactly what it missed', async () => {
    const alice = await register(server.base, 'alice');
    const bob = await register(server.base, 'bob');
    const room = `resume-${rand()}`;
    const b = await io(bob.token);
    const joined = await request(b.socket, 'joinRoom', { room });
    const roomId = joined.room_id;

    let a = await io(alice.token);
    await request(a.socket, 'joinRoom', { room });
    for (let i = 1; i <= 3; i++) await request(b.socket, 'chatMessage', { room, message: `before ${i}` });
    const early = await a.inbox.until('chatMessage', () => true, 3);
    const lastSeen = Math.max(...seqsOf(early));
    assert.equal(lastSeen, 3);

    a.socket.close();
    for (let i = 1; i <= 5; i++) await request(b.socket, 'chatMessage', { room, message: `missed ${i}` });

    // Resume from the handshake: `since` maps rooms to the last seq seen.
    a = await io(alice.token, { auth: { token: alice.token, since: { [roomId]: lastSeen } } });
    const [resumed] = await a.inbox.until('chat-history');
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.room_id, roomId);
    const missed = await a.inbox.until('chatMessage', () => true, 5);
    assert.deepEqual(seqsOf(missed), [4, 5, 6, 7, 8]);
    assert.deepEqual(
      missed.map((m) => m.content),
      [1, 2, 3, 4, 5].map((i) => `missed ${i}`),
    );
    // Live traffic continues after the replay, without a gap or a repeat.
    await request(b.socket, 'chatMessage', { room, message: 'live' });
    const all = await a.inbox.until('chatMessage', () => true, 6);
    assert.deepEqual(seqsOf(all), [4, 5, 6, 7, 8, 9]);

    // Resume by joinRoom, by name, from a seq.
    const c = await io(alice.token);
    const again = await request(c.socket, 'joinRoom', { room, since_seq: 7 });
    assert.equal(again.ok, true);
    const replayed = await c.inbox.until('chatMessage', () => true, 2);
    assert.deepEqual(seqsOf(replayed), [8, 9]);
  });

  test('private rooms are refused without membership or the access code', async () => {
    const owner = await register(server.base, 'owner');
    const other = await register(server.base, 'other');
    const name = `secret-${rand()}`;
    const created = await api(server.base, 'POST', '/api/v1/rooms', {
      token: owner.token,
      body: { name, is_private: true, access_code: 'open sesame 123' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const o = await io(other.token);
    const refused = await request(o.socket, 'joinRoom', { room: name });
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, 'not_found');
    const wrong = await request(o.socket, 'joinRoom', { room: name, access_code: 'not the code!' });
    assert.equal(wrong.error.code, 'wrong_access_code');
    const right = await request(o.socket, 'joinRoom', { room: name, access_code: 'open sesame 123' });
    assert.equal(right.ok, true, JSON.stringify(right));
    assert.equal(right.room_id, created.body.id);
  });

  test('missing, invalid and expired tokens are refused with a connect_error saying why', async () => {
    const missing = await connectError(server.base, {});
    assert.match(missing.message, /missing access token/);
    const invalid = await connectError(server.base, { token: 'not.a.token' });
    assert.match(invalid.message, /invalid access token/);
    const alice = await register(server.base, 'alice');
    const expired = signToken(secret, alice.user, Math.floor(Date.now() / 1000) - 60);
    const refused = await connectError(server.base, { token: expired });
    assert.match(refused.message, /expired/);
    // A token signed with another secret is invalid, over long-polling too.
    const forged = signToken(newSecret(), alice.user, Math.floor(Date.now() / 1000) + 600);
    const viaPolling = await connectError(server.base, { token: forged }, ['polling']);
    assert.match(viaPolling.message, /invalid access token/);
    // The query string works as well as the auth payload.
    const byQuery = await connectIo(server.base, { query: { token: alice.token } });
    byQuery.socket.close();
  });

  test('a live socket takes a fresh token, and a logout anywhere disconnects it', async () => {
    const alice = await register(server.base, 'alice');
    const a = await io(alice.token);
    const refreshed = await api(server.base, 'POST', '/api/v1/auth/refresh', {
      body: { refresh_token: alice.refresh },
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    const renewed = await request(a.socket, 'auth', { token: refreshed.body.access_token });
    assert.equal(renewed.ok, true, JSON.stringify(renewed));
    assert.equal(renewed.user.id, alice.user.id);
    const bob = await register(server.base, 'bob');
    const stolen = await request(a.socket, 'auth', { token: bob.token });
    assert.equal(stolen.error.code, 'forbidden');

    const disconnected = new Promise((ok) => a.socket.once('disconnect', ok));
    const out = await api(server.base, 'POST', '/api/v1/auth/logout', {
      body: { refresh_token: refreshed.body.refresh_token },
    });
    assert.equal(out.status, 204);
    const [signedOut] = await a.inbox.until('error', (e) => e.code === 'unauthorized');
    assert.match(signedOut.message, /signed out/);
    const [closing] = await a.inbox.until('closing');
    assert.equal(closing.code, 4401);
    assert.equal(await disconnected, 'io server disconnect');
    // The signed-out token no longer connects.
    const refused = await connectError(server.base, { token: refreshed.body.access_token });
    assert.match(refused.message, /invalid access token/);
  });

  test('HTTP long-polling carries the same session', async () => {
    const alice = await register(server.base, 'alice');
    const bob = await register(server.base, 'bob');
    const room = `polling-${rand()}`;
    const a = await io(alice.token, { transports: ['polling'] });
    const b = await io(bob.token, { transports: ['polling'] });
    assert.equal(a.socket.io.engine.transport.name, 'polling');
    await request(a.socket, 'joinRoom', { room });
    await request(b.socket, 'joinRoom', { room });
    await a.inbox.until('chat-history');
    await b.inbox.until('chat-history');
    for (let i = 1; i <= 3; i++) await request(a.socket, 'chatMessage', { room, message: `poll ${i}` });
    const got = await b.inbox.until('chatMessage', () => true, 3);
    assert.deepEqual(seqsOf(got), [1, 2, 3]);
    const back = await request(b.socket, 'chatMessage', { room, message: 'back' });
    const [seen] = await a.inbox.until('chatMessage', (m) => m.content === 'back');
    assert.equal(seen.seq, back.message.seq);
    assert.equal(b.socket.io.engine.transport.name, 'polling');
  });
});

describe('three instances over PostgreSQL and Redis', () => {
  let db;
  let redis;
  const servers = [];
  const sockets = [];
  before(async () => {
    db = createDatabase();
    redis = await startRedis();
    const secret = newSecret();
    const prefix = `sio${rand()}:`;
    // One at a time: the first migrates the shared database.
    for (let i = 0; i < 3; i++) {
      servers.push(
        await startServer({
          args: ['--jwt-secret', secret],
          env: { DATABASE_URL: db.url, REDIS_URL: redis.url, SOCKET_HUB_REDIS_PREFIX: prefix },
        }),
      );
    }
  });
  after(async () => {
    for (const s of sockets) s.close();
    for (const s of servers) await s.stop();
    await redis?.stop();
    db?.drop();
  });

  test('clients on three instances, of both protocols, see every message with the same seqs', async () => {
    const [one, two, three] = servers;
    const alice = await register(one.base, 'alice');
    const bob = await register(two.base, 'bob');
    const carol = await register(three.base, 'carol');
    const room = `cluster-${rand()}`;

    const a = await connectIo(one.base, { auth: { token: alice.token } });
    const b = await connectIo(two.base, { auth: { token: bob.token }, transports: ['polling'] });
    sockets.push(a.socket, b.socket);
    const joinedA = await request(a.socket, 'joinRoom', { room });
    const joinedB = await request(b.socket, 'joinRoom', { room });
    assert.equal(joinedB.room_id, joinedA.room_id, 'one room by that name across instances');
    const c = await connectWs(three.base, carol.token);
    sockets.push(c);
    c.send({ type: 'join_room', room_id: joinedA.room_id });
    await c.until((f) => f.type === 'room_joined');
    await a.inbox.until('chat-history');
    await b.inbox.until('chat-history');

    const seqs = [];
    for (let i = 0; i < 3; i++) {
      seqs.push((await request(a.socket, 'chatMessage', { room, message: `a${i}` })).message.seq);
      seqs.push((await request(b.socket, 'chatMessage', { room, message: `b${i}` })).message.seq);
      c.send({ type: 'message_send', room_id: joinedA.room_id, client_msg_id: `c${i}`, content: `c${i}` });
      const [ack] = await c.until((f) => f.type === 'ack' && f.client_msg_id === `c${i}`);
      seqs.push(ack.message.seq);
    }
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const atA = await a.inbox.until('chatMessage', () => true, 9);
    const atB = await b.inbox.until('chatMessage', () => true, 9);
    const atC = (await c.until((f) => f.type === 'chat', 9)).map((f) => f.message);
    for (const seen of [atA, atB, atC]) {
      assert.deepEqual(seqsOf(seen), seqs);
      assert.deepEqual(
        seen.map((m) => m.content),
        ['a0', 'b0', 'c0', 'a1', 'b1', 'c1', 'a2', 'b2', 'c2'],
      );
    }

    // A client of instance one resumes on instance three and misses nothing.
    a.socket.close();
    await request(b.socket, 'chatMessage', { room, message: 'while away' });
    const moved = await connectIo(three.base, { auth: { token: alice.token, since: { [room]: 9 } } });
    sockets.push(moved.socket);
    const [missed] = await moved.inbox.until('chatMessage');
    assert.equal(missed.seq, 10);
    assert.equal(missed.content, 'while away');
  });
});
