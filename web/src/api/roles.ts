// What the caller may do in a room, from the permission table of docs/protocol.md. The
// server decides; this only hides buttons that would be refused.
import type { Role } from './types';

export type MemberAction = 'make_admin' | 'demote' | 'mute' | 'unmute' | 'kick' | 'ban';

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

export function asRole(v: string | null | undefined): Role | null {
  return v === 'owner' || v === 'admin' || v === 'member' ? v : null;
}

/** The actions `caller` may take on a member with role `target` (never on oneself). */
export function memberActions(
  caller: Role | null,
  target: Role | null,
  isSelf: boolean,
  muted: boolean,
): MemberAction[] {
  if (!caller || !target || isSelf) return [];
  const out: MemberAction[] = [];
  if (caller === 'owner' && target === 'member') out.push('make_admin');
  if (caller === 'owner' && target === 'admin') out.push('demote');
  if (RANK[caller] >= RANK.admin && RANK[target] < RANK[caller]) {
    out.push(muted ? 'unmute' : 'mute', 'kick', 'ban');
  }
  return out;
}

/** Invite by name: any member of a public room, admins and the owner of a private one. */
export function canInvite(caller: Role | null, isPrivate: boolean): boolean {
  return !!caller && (!isPrivate || caller !== 'member');
}

/** Create invite links: admins and the owner. */
export function canCreateLinks(caller: Role | null): boolean {
  return caller === 'admin' || caller === 'owner';
}

export const ACTION_LABEL: Record<MemberAction, string> = {
  make_admin: 'Make admin',
  demote: 'Remove admin',
  mute: 'Mute',
  unmute: 'Unmute',
  kick: 'Kick',
  ban: 'Ban',
};

/** Rename, topic, access code, public/private, links and bans: admins and the owner. */
export function canManageRoom(caller: Role | null): boolean {
  return caller === 'admin' || caller === 'owner';
}

/** Transfer ownership and delete the room: the owner alone. */
export function isOwner(caller: Role | null): boolean {
  return caller === 'owner';
}
