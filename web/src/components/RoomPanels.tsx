// A room's invite dialog and member list, with the actions the caller's role allows.
import { useState, type FormEvent } from 'react';
import {
  ACTION_LABEL,
  asRole,
  canCreateLinks,
  canInvite,
  describeError,
  memberActions,
  type ChatClient,
  type Member,
  type MemberAction,
  type RoomId,
} from '../api';
import { PresenceDot } from './Account';
import { Feedback } from './Feedback';
import { useLoaded } from './useLoaded';

export function InvitePanel({ client, roomId, onClose }: { client: ChatClient; roomId: RoomId; onClose: () => void }) {
  const state = client.rooms.get(roomId);
  const role = asRole(state?.room.role);
  const [username, setUsername] = useState('');
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [link, setLink] = useState<string | null>(null);
  if (!state) return null;

  async function invite(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setStatus(null);
    try {
      await client.inviteUser(roomId, username);
      setStatus(`Invited ${username.trim()}.`);
      setUsername('');
    } catch (err) {
      setError(describeError(err));
    }
  }

  async function createLink() {
    setError(null);
    try {
      const l = await client.createInviteLink(roomId);
      setLink(l.url ? new URL(l.url, window.location.origin).href : null);
    } catch (err) {
      setError(describeError(err));
    }
  }

  async function copy() {
    if (!link) return;
    try {
      await navigator.clipboard.writeText(link);
      setStatus('Link copied.');
    } catch {
      setStatus('Select the link and copy it.');
    }
  }

  return (
    <div className="room-panel" role="dialog" aria-label="Invite people">
      <div className="room-panel-head">
        <strong>Invite people</strong>
        <button className="ghost small" onClick={onClose} aria-label="Close invite dialog">
          ✕
        </button>
      </div>
      {canInvite(role, state.room.is_private) && (
        <form className="inline-form" onSubmit={invite}>
          <label htmlFor="invite-username">Username to invite</label>
          <input
            id="invite-username"
            required
            autoCapitalize="none"
            spellCheck={false}
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
          <button type="submit">Invite</button>
        </form>
      )}
      {canCreateLinks(role) && (
        <div className="inline-form">
          <button onClick={() => void createLink()}>Create invite link</button>
          {link && (
            <>
              <label htmlFor="invite-link" className="sr-only">
                Invite link
              </label>
              <input id="invite-link" readOnly value={link} onFocus={(e) => e.target.select()} />
              <button onClick={() => void copy()}>Copy link</button>
            </>
          )}
        </div>
      )}
      <Feedback status={status} error={error} />
    </div>
  );
}

export function MembersPanel({ client, roomId, onClose }: { client: ChatClient; roomId: RoomId; onClose: () => void }) {
  const state = client.rooms.get(roomId);
  const eventCount = state?.eventCount ?? 0;
  const [reload, setReload] = useState(0);
  const [members, loadError] = useLoaded(() => client.members(roomId), [client, roomId, eventCount, reload]);
  const [actionError, setError] = useState<string | null>(null);
  const error = actionError ?? loadError;
  const me = client.me;

  if (!state) return null;
  const mine = members?.find((m) => m.user.id === me?.id);
  const callerRole = asRole(mine?.role) ?? asRole(state.room.role);

  async function act(m: Member, action: MemberAction) {
    setError(null);
    const id = m.user.id;
    try {
      if (action === 'ban' && !window.confirm(`Ban ${m.user.username} from this room?`)) return;
      if (action === 'make_admin') await client.setRole(roomId, id, 'admin');
      else if (action === 'demote') await client.setRole(roomId, id, 'member');
      else if (action === 'mute') await client.mute(roomId, id, true);
      else if (action === 'unmute') await client.mute(roomId, id, false);
      else if (action === 'kick') await client.kick(roomId, id);
      else await client.ban(roomId, id);
      setReload((n) => n + 1);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <div className="room-panel" role="dialog" aria-label="Members">
      <div className="room-panel-head">
        <strong>Members</strong>
        <button className="ghost small" onClick={onClose} aria-label="Close member list">
          ✕
        </button>
      </div>
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      {members === null ? (
        <p className="muted small">Loading members…</p>
      ) : (
        <ul className="member-list">
          {members.map((m) => {
            const muted = !!m.muted_until && new Date(m.muted_until).getTime() > Date.now();
            const actions = memberActions(callerRole, asRole(m.role), m.user.id === me?.id, muted);
            return (
              <li key={m.user.id} data-testid="member" data-role={m.role}>
                <span className="member-name">
                  <PresenceDot client={client} userId={m.user.id} /> {m.user.username}
                  {m.user.id === me?.id ? ' (you)' : ''}
                </span>
                <span className="role">{m.role}</span>
                {muted && <span className="role">muted</span>}
                <span className="member-actions">
                  {actions.map((a) => (
                    <button
                      key={a}
                      className="small"
                      aria-label={`${ACTION_LABEL[a]} ${m.user.username}`}
                      onClick={() => void act(m, a)}
                    >
                      {ACTION_LABEL[a]}
                    </button>
                  ))}
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
