import { describe, expect, it } from 'vitest';
import { encodeClientFrame, parseServerFrame } from './frames';

const msg = {
  id: 9,
  room_id: 2,
  seq: 5,
  user: { id: 1, username: 'ada' },
  content: 'hi',
  client_msg_id: 'c1',
  created_at: '2024-05-01T10:00:00Z',
};

describe('parseServerFrame', () => {
  it('parses every server frame type', () => {
    expect(parseServerFrame('{"type":"ready","user":{"id":1,"username":"ada"}}')).toEqual({
      type: 'ready',
      user: { id: 1, username: 'ada' },
    });
    expect(
      parseServerFrame(JSON.stringify({ type: 'room_joined', room_id: 2, members: [msg.user], last_seq: 7 })),
    ).toEqual({ type: 'room_joined', room_id: 2, members: [msg.user], last_seq: 7 });
    expect(parseServerFrame('{"type":"room_left","room_id":2}')).toEqual({ type: 'room_left', room_id: 2 });
    expect(parseServerFrame(JSON.stringify({ type: 'chat', message: msg }))).toEqual({ type: 'chat', message: msg });
    expect(parseServerFrame(JSON.stringify({ type: 'ack', client_msg_id: 'c1', message: msg }))).toEqual({
      type: 'ack',
      client_msg_id: 'c1',
      message: msg,
    });
    for (const type of ['join', 'leave', 'typing'] as const) {
      expect(parseServerFrame(JSON.stringify({ type, room_id: 2, user: msg.user }))).toEqual({
        type,
        room_id: 2,
        user: msg.user,
      });
    }
    expect(parseServerFrame('{"type":"error","code":"rate_limited","message":"slow","ref":"c1"}')).toEqual({
      type: 'error',
      code: 'rate_limited',
      message: 'slow',
      ref: 'c1',
    });
    expect(parseServerFrame('{"type":"error","code":"not_found","message":"x"}')).toEqual({
      type: 'error',
      code: 'not_found',
      message: 'x',
    });
    expect(parseServerFrame('{"type":"pong"}')).toEqual({ type: 'pong' });
  });

  it('parses the message lifecycle events, and refuses them without an event', () => {
    const events = {
      message_updated: { type: 'message_updated', message_id: 3, content: 'x', edited_at: '2024-05-01T10:00:00Z' },
      message_deleted: { type: 'message_deleted', message_id: 3, deleted_at: '2024-05-01T10:00:00Z' },
      reaction: { type: 'reaction', message_id: 3, emoji: '👍', added: true },
    } as const;
    for (const [type, event] of Object.entries(events)) {
      const message = { ...msg, client_msg_id: undefined, event };
      expect(parseServerFrame(JSON.stringify({ type, message }))).toEqual({ type, message: JSON.parse(JSON.stringify(message)) });
      expect(parseServerFrame(JSON.stringify({ type, message: msg }))).toBeNull();
    }
  });

  it('drops what it does not understand instead of throwing', () => {
    for (const bad of [
      'not json',
      '[]',
      '{"no":"type"}',
      '{"type":"bogus"}',
      '{"type":"chat","message":{"id":1}}',
      '{"type":"room_joined","room_id":"2","members":[],"last_seq":0}',
      '{"type":"ack","message":{}}',
      '{"type":"join","room_id":1,"user":{"id":"x"}}',
    ]) {
      expect(parseServerFrame(bad)).toBeNull();
    }
  });

  it('accepts a message without client_msg_id and normalizes null', () => {
    const { client_msg_id: _c, ...plain } = msg;
    expect(parseServerFrame(JSON.stringify({ type: 'chat', message: plain }))).toEqual({ type: 'chat', message: plain });
    const f = parseServerFrame(JSON.stringify({ type: 'chat', message: { ...plain, client_msg_id: null } }));
    expect(f).toEqual({ type: 'chat', message: plain });
  });
});

describe('encodeClientFrame', () => {
  it('uses the snake_case wire names', () => {
    expect(JSON.parse(encodeClientFrame({ type: 'join_room', room_id: 7, since_seq: 3 }))).toEqual({
      type: 'join_room',
      room_id: 7,
      since_seq: 3,
    });
    expect(encodeClientFrame({ type: 'ping' })).toBe('{"type":"ping"}');
    expect(JSON.parse(encodeClientFrame({ type: 'message_send', room_id: 1, client_msg_id: 'a', content: 'x' }))).toEqual(
      { type: 'message_send', room_id: 1, client_msg_id: 'a', content: 'x' },
    );
  });
});

describe('notification frames', () => {
  const n = { id: 3, kind: 'mentioned', room_id: 4, from: { id: 2, username: 'bob' }, message: 'hi @ada', read: false, created_at: 'x' };
  it('parses a notification', () => {
    expect(parseServerFrame(JSON.stringify({ type: 'notification', notification: n }))).toEqual({
      type: 'notification',
      notification: n,
    });
    const bare = { id: 4, kind: 'direct_message', read: false, created_at: 'x' };
    expect(parseServerFrame(JSON.stringify({ type: 'notification', notification: bare }))).toEqual({
      type: 'notification',
      notification: bare,
    });
  });
  it('drops a malformed one', () => {
    for (const bad of [{ ...n, id: 'x' }, { ...n, read: 'no' }, { ...n, from: { id: 2 } }, { ...n, room_id: 1.5 }, null]) {
      expect(parseServerFrame(JSON.stringify({ type: 'notification', notification: bad }))).toBeNull();
    }
  });
});

describe('presence frames', () => {
  it('parses a presence change, with last seen when offline', () => {
    expect(parseServerFrame('{"type":"presence","user_id":2,"status":"away"}')).toEqual({
      type: 'presence',
      user_id: 2,
      status: 'away',
    });
    expect(parseServerFrame('{"type":"presence","user_id":2,"status":"offline","last_seen_at":"t"}')).toEqual({
      type: 'presence',
      user_id: 2,
      status: 'offline',
      last_seen_at: 't',
    });
  });
  it('drops a malformed one', () => {
    for (const bad of ['{"type":"presence","user_id":"2","status":"away"}', '{"type":"presence","user_id":2,"status":"gone"}']) {
      expect(parseServerFrame(bad)).toBeNull();
    }
  });
});
