import { describe, expect, it } from 'vitest';
import { asRole, canCreateLinks, canInvite, memberActions } from './roles';

describe('member actions follow the permission table', () => {
  it('the owner promotes members, demotes admins and moderates both', () => {
    expect(memberActions('owner', 'member', false, false)).toEqual(['make_admin', 'mute', 'kick', 'ban']);
    expect(memberActions('owner', 'admin', false, true)).toEqual(['demote', 'unmute', 'kick', 'ban']);
  });
  it('an admin moderates members only, and changes no roles', () => {
    expect(memberActions('admin', 'member', false, false)).toEqual(['mute', 'kick', 'ban']);
    expect(memberActions('admin', 'admin', false, false)).toEqual([]);
    expect(memberActions('admin', 'owner', false, false)).toEqual([]);
  });
  it('members and oneself get nothing', () => {
    expect(memberActions('member', 'member', false, false)).toEqual([]);
    expect(memberActions('owner', 'owner', true, false)).toEqual([]);
    expect(memberActions(null, 'member', false, false)).toEqual([]);
  });
  it('invites and links', () => {
    expect(canInvite('member', false)).toBe(true);
    expect(canInvite('member', true)).toBe(false);
    expect(canInvite('admin', true)).toBe(true);
    expect(canCreateLinks('member')).toBe(false);
    expect(canCreateLinks('owner')).toBe(true);
    expect(asRole('admin')).toBe('admin');
    expect(asRole('boss')).toBeNull();
  });
});
