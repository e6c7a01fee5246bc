// Invite links' landing page, starting a DM, the notification bell and one-time notices.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { describeError, describeNotification, type ChatClient } from '../api';
import { BellIcon } from './Icons';
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
