import { describe, expect, it } from 'vitest';
import { canManageRoom, isOwner } from './roles';
import { roomPatch, settingsForm } from './settings';
import type { RoomView } from './types';

const room = (extra: Partial<RoomView> = {}): RoomView => ({
  id: 3,
  name: 'lobby',
  topic: 'hello',
  is_private: true,
  has_access_code: true,
  owner_id: 1,
  is_direct: false,
  last_seq: 0,
  last_read_seq: 0,
  unread: 0,
  member_count: 2,
  is_member: true,
  role: 'owner',
  created_at: '2026-01-01T00:00:00Z',
  ...extra,
});

describe('room settings send only what changed', () => {
  it('an untouched form changes nothing', () => {
    expect(roomPatch(room(), settingsForm(room()))).toBeNull();
    expect(roomPatch(room({ topic: null }), settingsForm(room({ topic: null })))).toBeNull();
  });
  it('a rename and a new topic are trimmed', () => {
    const f = { ...settingsForm(room()), name: '  hall ', topic: ' news ' };
    expect(roomPatch(room(), f)).toEqual({ name: 'hall', topic: 'news' });
  });
  it('a blank name is not a rename; a blank topic clears it', () => {
    const f = { ...settingsForm(room()), name: '  ', topic: '' };
    expect(roomPatch(room(), f)).toEqual({ topic: '' });
  });
  it('a new access code is sent as typed; clearing sends ""', () => {
    expect(roomPatch(room(), { ...settingsForm(room()), accessCode: 'sesame-42' })).toEqual({ access_code: 'sesame-42' });
    expect(roomPatch(room(), { ...settingsForm(room()), clearCode: true })).toEqual({ access_code: '' });
    // Nothing to clear.
    expect(roomPatch(room({ has_access_code: false }), { ...settingsForm(room()), clearCode: true })).toBeNull();
  });
  it('making a room public sends no code; making one private may', () => {
    expect(roomPatch(room(), { ...settingsForm(room()), isPrivate: false, accessCode: 'ignored-1' })).toEqual({
      is_private: false,
    });
    const pub = room({ is_private: false, has_access_code: false });
    expect(roomPatch(pub, { ...settingsForm(pub), isPrivate: true, accessCode: 'sesame-42' })).toEqual({
      is_private: true,
      access_code: 'sesame-42',
    });
  });
});

describe('room settings follow the permission table', () => {
  it('admins and the owner manage; only the owner transfers and deletes', () => {
    expect([canManageRoom('owner'), canManageRoom('admin'), canManageRoom('member'), canManageRoom(null)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect([isOwner('owner'), isOwner('admin'), isOwner('member')]).toEqual([true, false, false]);
  });
});
