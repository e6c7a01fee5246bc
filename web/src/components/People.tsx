// Invite links' landing page, starting a DM, blocking, my profile, the notification bell
// and one-time notices.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { describeError, describeNotification, type ChatClient, type User } from '../api';
import { BellIcon } from './Icons';
import { Avatar } from './Account';
import { useLoaded } from './useLoaded';

type Nav = (to: string) => void;

/** `/invite/<token>`: where the link leads, and joining it. */
export function InviteLanding({ client, token, navigate }: { client: ChatClient; token: string; navigate: Nav }) {
  const [preview, loadError] = useLoaded(() => client.invitePreview(token), [client, token]);
  const [joinError, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const error = joinError ?? loadError;

  async function join() {
    setBusy(true);
    setError(null);
    try {
      const room = await client.acceptInviteLink(token);
      navigate(`/rooms/${room.id}`);
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-label="Invitation">
      <h2>You are invited</h2>
      {preview ? (
        <>
          <p data-testid="invite-preview">
            Join <strong>{preview.room_name}</strong> ({preview.is_private ? 'private' : 'public'} room,{' '}
            {preview.member_count} member{preview.member_count === 1 ? '' : 's'}).
          </p>
          <button className="primary" disabled={busy} onClick={() => void join()}>
            {busy ? 'Joining…' : 'Join room'}
          </button>
        </>
      ) : (
        !error && <p className="muted">Loading invitation…</p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

/** `/dm`: start (or reopen) a direct conversation by username. */
export function StartDirect({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const [username, setUsername] = useState('');
  const [error, setError] = useState<string | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const room = await client.openDirect(username);
      navigate(`/rooms/${room.id}`);
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <section className="panel" aria-label="New direct message">
      <h2>New direct message</h2>
      <form className="form" onSubmit={submit}>
        <label htmlFor="dm-username">Their username</label>
        <input
          id="dm-username"
          required
          autoCapitalize="none"
          spellCheck={false}
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary">
          Start conversation
        </button>
      </form>
    </section>
  );
}

/** The bell: unread count, and the list to read and mark read. */
export function NotificationBell({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLDivElement>(null);
  const unread = client.unreadNotifications();
  const list = [...client.notifications].reverse();

  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, [open]);

  return (
    <div className="bell-wrap" ref={ref}>
      <button
        className="ghost bell"
        aria-label={`Notifications${unread ? `, ${unread} unread` : ''}`}
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        <BellIcon />
        {unread > 0 && (
          <span className="badge" data-testid="bell-count" aria-hidden="true">
            {unread > 99 ? '99+' : unread}
          </span>
        )}
      </button>
      {open && (
        <div className="bell-panel" role="region" aria-label="Notification list">
          <div className="bell-head">
            <strong>Notifications</strong>
            <button
              className="link"
              disabled={unread === 0}
              onClick={() => client.markNotificationsRead().catch((err) => setError(describeError(err)))}
            >
              Mark all read
            </button>
          </div>
          {error && (
            <p className="error small" role="alert">
              {error}
            </p>
          )}
          {list.length === 0 ? (
            <p className="muted small">Nothing yet.</p>
          ) : (
            <ul className="bell-list">
              {list.map((n) => {
                const target = n.room_id != null && client.rooms.get(n.room_id)?.room.is_member ? n.room_id : null;
                const invitedTo = n.kind === 'invited' && target === null && n.room_id != null ? n.room_id : null;
                return (
                  <li key={n.id} className={n.read ? 'read' : 'unread'} data-testid="notification" data-kind={n.kind}>
                    {target !== null ? (
                      <button
                        className="link"
                        onClick={() => {
                          setOpen(false);
                          navigate(`/rooms/${target}`);
                        }}
                      >
                        {describeNotification(n)}
                      </button>
                    ) : (
                      <span>{describeNotification(n)}</span>
                    )}
                    {invitedTo !== null && (
                      <span className="invite-answer">
                        <button
                          className="small primary"
                          onClick={() =>
                            client.answerInvitation(invitedTo, true).then(
                              (room) => {
                                if (!room) return setError('That invitation is no longer open.');
                                setOpen(false);
                                navigate(`/rooms/${room.id}`);
                              },
                              (err) => setError(describeError(err)),
                            )
                          }
                        >
                          Accept
                        </button>
                        <button
                          className="small"
                          onClick={() =>
                            client.answerInvitation(invitedTo, false).then(
                              () => client.markNotificationRead(n.id),
                              (err) => setError(describeError(err)),
                            )
                          }
                        >
                          Decline
                        </button>
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

/** Things the user must be told once, e.g. that they were removed from a room. */
export function Notices({ client }: { client: ChatClient }) {
  if (client.notices.length === 0) return null;
  return (
    <div className="notices">
      {client.notices.map((n) => (
        <p key={n.id} className="notice" role="alert" data-testid="notice">
          <span>{n.text}</span>
          <button className="link" onClick={() => client.dismissNotice(n.id)}>
            Dismiss
          </button>
        </p>
      ))}
    </div>
  );
}

/**
 * Block or unblock a DM's peer. The server keeps no list the client can read, so this
 * starts at "Block" and follows what the user did here; unblocking someone not blocked
 * answers 404, shown as an error.
 */
export function BlockButton({ client, peer }: { client: ChatClient; peer: User }) {
  const [blocked, setBlocked] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function toggle() {
    setError(null);
    if (!blocked && !window.confirm(`Block ${peer.username}? Neither of you can send in this conversation until you unblock.`)) return;
    try {
      if (blocked) await client.unblock(peer.id);
      else await client.block(peer.id);
      setBlocked(!blocked);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <>
      <button
        className="ghost small"
        aria-label={`${blocked ? 'Unblock' : 'Block'} ${peer.username}`}
        onClick={() => void toggle()}
      >
        {blocked ? 'Unblock' : 'Block'}
      </button>
      {error && (
        <span className="error small" role="alert">
          {error}
        </span>
      )}
    </>
  );
}

/** `/profile`: my display name and status text (`PATCH /users/me`). */
export function ProfilePage({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const [profile, loadError] = useLoaded(() => client.myProfile(), [client, client.me?.id]);
  const [displayName, setDisplayName] = useState<string | null>(null);
  const [statusText, setStatusText] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [saveError, setSaveError] = useState<string | null>(null);
  const error = saveError ?? loadError;
  const name = displayName ?? profile?.display_name ?? '';
  const status = statusText ?? profile?.status ?? '';

  async function save(e: FormEvent) {
    e.preventDefault();
    setSaved(null);
    setSaveError(null);
    try {
      // `""` clears a field on the server.
      const p = await client.updateProfile({ display_name: name.trim(), status: status.trim() });
      setDisplayName(p.display_name ?? '');
      setStatusText(p.status ?? '');
      setSaved('Profile saved.');
    } catch (err) {
      setSaveError(describeError(err));
    }
  }

  return (
    <section className="panel" aria-label="My profile">
      <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
        ← Rooms
      </button>
      <h2>My profile</h2>
      {profile === null && !loadError ? (
        <p className="muted">Loading profile…</p>
      ) : (
        <form className="form" onSubmit={save}>
          {profile && (
            <div className="profile-card">
              <Avatar profile={profile} size="large" />
              <p className="muted small">
                Signed in as <strong>{profile.username}</strong>
                <br />
                <button type="button" className="link" onClick={() => navigate('/account')}>
                  Account: password, export, deletion
                </button>
              </p>
            </div>
          )}
          <label htmlFor="profile-name">Display name</label>
          <input id="profile-name" maxLength={64} value={name} onChange={(e) => setDisplayName(e.target.value)} />
          <label htmlFor="profile-status">Status</label>
          <input id="profile-status" maxLength={140} value={status} onChange={(e) => setStatusText(e.target.value)} />
          {saved && (
            <p className="small" role="status">
              {saved}
            </p>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" className="primary">
            Save profile
          </button>
        </form>
      )}
    </section>
  );
}
