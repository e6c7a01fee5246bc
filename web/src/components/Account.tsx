// People and my account: avatars and presence dots, a person's profile page, finding
// people (then messaging them or inviting them to a room), and the account page
// (password, export, deletion). Presence is reported from here too (usePresenceReporter).
import { useEffect, useState, type FormEvent } from 'react';
import {
  asRole,
  canInvite,
  describeError,
  ownStatus,
  presenceLabel,
  type ChatClient,
  type Profile,
  type UserId,
} from '../api';
import { Feedback } from './Feedback';
import './people.css';
import { useLoaded } from './useLoaded';

type Nav = (to: string) => void;

/** The generated avatar: initials on the person's colour. */
export function Avatar({ profile, size = 'normal' }: { profile: Profile; size?: 'normal' | 'large' }) {
  return (
    <span
      className={`avatar avatar-${size}`}
      style={{ background: profile.avatar_color }}
      aria-hidden="true"
      data-testid="avatar"
    >
      {profile.initials || '?'}
    </span>
  );
}

/** A coloured dot for a person's presence, when they share a room or DM with me. */
export function PresenceDot({ client, userId }: { client: ChatClient; userId: UserId }) {
  const entry = client.presenceOf(userId);
  if (!entry) return null;
  const label = presenceLabel(entry, Date.now());
  return (
    <span
      className={`presence-dot presence-${entry.status}`}
      role="img"
      aria-label={label}
      title={label}
      data-testid="presence"
      data-status={entry.status}
    />
  );
}

/**
 * Tells the server whether this tab is away (hidden, or no input for a while) or
 * online, so the people I share rooms with see it.
 */
export function usePresenceReporter(client: ChatClient): void {
  useEffect(() => {
    let lastActivity = Date.now();
    const report = () =>
      client.setOwnPresence(ownStatus(document.visibilityState === 'visible', lastActivity, Date.now()));
    const active = () => {
      const idle = ownStatus(true, lastActivity, Date.now()) === 'away';
      lastActivity = Date.now();
      if (idle) report();
    };
    const events = ['pointerdown', 'keydown', 'mousemove', 'focus'] as const;
    for (const e of events) window.addEventListener(e, active, { passive: true });
    document.addEventListener('visibilitychange', report);
    const timer = setInterval(report, 30_000);
    return () => {
      for (const e of events) window.removeEventListener(e, active);
      document.removeEventListener('visibilitychange', report);
      clearInterval(timer);
    };
  }, [client]);
}

/** One line under a DM's title: the peer's presence. */
export function PeerPresence({ client, userId }: { client: ChatClient; userId: UserId }) {
  const entry = client.presenceOf(userId);
  return (
    <p className="muted small" data-testid="peer-presence">
      <PresenceDot client={client} userId={userId} /> {entry ? presenceLabel(entry, Date.now()) : 'Direct message'}
    </p>
  );
}

/** Rooms of mine I may invite people to. */
function invitableRooms(client: ChatClient) {
  return client.myRooms().filter((r) => canInvite(asRole(r.room.role), r.room.is_private));
}

/** "Message" and "Invite to room" for one person. */
function PersonActions({ client, profile, navigate }: { client: ChatClient; profile: Profile; navigate: Nav }) {
  const rooms = invitableRooms(client);
  const [roomId, setRoomId] = useState<string>('');
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const isMe = profile.id === client.me?.id;
  if (isMe) return null;

  async function message() {
    setError(null);
    try {
      const room = await client.openDirect(profile.username);
      navigate(`/rooms/${room.id}`);
    } catch (err) {
      setError(describeError(err));
    }
  }

  async function invite(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setStatus(null);
    const target = Number(roomId || rooms[0]?.room.id);
    if (!target) return;
    try {
      await client.inviteUser(target, profile.username);
      setStatus(`Invited ${profile.username} to ${client.displayName(target)}.`);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <div className="person-actions">
      <button className="small primary" aria-label={`Message ${profile.username}`} onClick={() => void message()}>
        Message
      </button>
      {rooms.length > 0 && (
        <form className="inline-form" onSubmit={invite}>
          <label className="sr-only" htmlFor={`invite-room-${profile.id}`}>
            Room to invite {profile.username} to
          </label>
          <select id={`invite-room-${profile.id}`} value={roomId} onChange={(e) => setRoomId(e.target.value)}>
            {rooms.map((r) => (
              <option key={r.room.id} value={r.room.id}>
                {r.room.name}
              </option>
            ))}
          </select>
          <button type="submit" className="small" aria-label={`Invite ${profile.username} to room`}>
            Invite to room
          </button>
        </form>
      )}
      <Feedback status={status} error={error} />
    </div>
  );
}

/** `/people`: find people by the start of their username. */
export function PeopleSearch({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<Profile[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function search(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const found = await client.searchUsers(query);
      setResults(found);
      // Presence comes only for people I share a room or DM with.
      void client.refreshPresence(found.filter((p) => p.presence).map((p) => p.id)).catch(() => {});
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <section className="panel" aria-label="Find people">
      <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
        ← Rooms
      </button>
      <h2>Find people</h2>
      <form className="inline-form" onSubmit={search} role="search">
        <label htmlFor="people-query" className="sr-only">
          Username starts with
        </label>
        <input
          id="people-query"
          required
          maxLength={64}
          autoCapitalize="none"
          spellCheck={false}
          placeholder="Username starts with…"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <button type="submit" className="primary">
          Search
        </button>
      </form>
      <Feedback status={null} error={error} />
      {results !== null && results.length === 0 && <p className="muted">Nobody by that name.</p>}
      {results !== null && results.length > 0 && (
        <ul className="people-list">
          {results.map((p) => (
            <li key={p.id} data-testid="person">
              <a
                className="person"
                href={`/users/${p.id}`}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(`/users/${p.id}`);
                }}
              >
                <Avatar profile={p} />
                <span>
                  <strong>{p.display_name ?? p.username}</strong>{' '}
                  <span className="muted small">@{p.username}</span>
                </span>
                <PresenceDot client={client} userId={p.id} />
              </a>
              <PersonActions client={client} profile={p} navigate={navigate} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** `/users/<id>`: a person's profile: avatar, name, status text, presence or last seen. */
export function UserProfilePage({ client, userId, navigate }: { client: ChatClient; userId: UserId; navigate: Nav }) {
  const [profile, error] = useLoaded(() => client.profile(userId), [client, userId]);
  useEffect(() => {
    if (profile?.presence) void client.refreshPresence([userId]).catch(() => {});
  }, [client, profile, userId]);
  const entry = client.presenceOf(userId);
  const seen =
    entry && profile?.presence
      ? presenceLabel(entry, Date.now())
      : profile?.last_seen_at
        ? presenceLabel({ status: 'offline', lastSeenAt: profile.last_seen_at }, Date.now())
        : null;
  return (
    <section className="panel" aria-label="Profile">
      <button className="ghost back" onClick={() => navigate('/people')} aria-label="Back to people">
        ← People
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {!profile && !error && <p className="muted">Loading profile…</p>}
      {profile && (
        <div className="profile-card">
          <Avatar profile={profile} size="large" />
          <div>
            <h2>
              {profile.display_name ?? profile.username} <PresenceDot client={client} userId={profile.id} />
            </h2>
            <p className="muted">@{profile.username}</p>
            {profile.status && <p data-testid="profile-status">{profile.status}</p>}
            <p className="muted small" data-testid="profile-presence">
              {seen ?? 'Presence is shown to people who share a room or conversation.'}
            </p>
            <PersonActions client={client} profile={profile} navigate={navigate} />
          </div>
        </div>
      )}
    </section>
  );
}

/** Saves `data` as a JSON file download. */
function download(name: string, data: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** `/account`: change password, export my data, delete my account. */
export function AccountPage({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const me = client.me;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [pwStatus, setPwStatus] = useState<string | null>(null);
  const [pwError, setPwError] = useState<string | null>(null);
  const [exportStatus, setExportStatus] = useState<string | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const [deletePassword, setDeletePassword] = useState('');
  const [confirmName, setConfirmName] = useState('');
  const [deleteError, setDeleteError] = useState<string | null>(null);

  async function changePassword(e: FormEvent) {
    e.preventDefault();
    setPwStatus(null);
    setPwError(null);
    if ([...next].length < 8) return setPwError('The new password needs at least 8 characters.');
    try {
      await client.changePassword(current, next);
      setCurrent('');
      setNext('');
      setPwStatus('Password changed. Your other sessions were signed out.');
    } catch (err) {
      setPwError(describeError(err));
    }
  }

  async function exportData() {
    setExportStatus(null);
    setExportError(null);
    try {
      const data = await client.exportAccount();
      download(`socket-hub-${me?.username ?? 'me'}.json`, data);
      setExportStatus('Your data was downloaded.');
    } catch (err) {
      setExportError(describeError(err));
    }
  }

  async function deleteAccount(e: FormEvent) {
    e.preventDefault();
    setDeleteError(null);
    if (confirmName !== me?.username) return setDeleteError('Type your username to confirm.');
    if (!window.confirm('Delete your account for good? This cannot be undone.')) return;
    try {
      await client.deleteAccount(deletePassword);
    } catch (err) {
      setDeleteError(describeError(err));
    }
  }

  return (
    <section className="panel" aria-label="Account">
      <button className="ghost back" onClick={() => navigate('/profile')} aria-label="Back to my profile">
        ← My profile
      </button>
      <h2>Account</h2>

      <h3 className="panel-subhead">Change password</h3>
      <form className="form" onSubmit={changePassword}>
        <label htmlFor="pw-current">Current password</label>
        <input
          id="pw-current"
          type="password"
          required
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
        />
        <label htmlFor="pw-new">New password</label>
        <input
          id="pw-new"
          type="password"
          required
          minLength={8}
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.target.value)}
        />
        <p className="hint">Every other device and browser signed in as you is signed out; this one stays.</p>
        <Feedback status={pwStatus} error={pwError} />
        <button type="submit" className="primary">
          Change password
        </button>
      </form>

      <h3 className="panel-subhead">Export my data</h3>
      <p className="hint">Your profile, rooms, conversations, messages, notifications and invitations, as one JSON file.</p>
      <button onClick={() => void exportData()}>Download my data</button>
      <Feedback status={exportStatus} error={exportError} />

      <h3 className="panel-subhead">Delete my account</h3>
      <form className="form" onSubmit={deleteAccount}>
        <p className="hint">
          Your memberships, invitations and notifications are deleted and you are signed out everywhere. Messages you
          sent stay in their rooms, shown as sent by “deleted user”. Rooms you own must be transferred or deleted first.
        </p>
        <label htmlFor="delete-password">Password</label>
        <input
          id="delete-password"
          type="password"
          required
          autoComplete="current-password"
          value={deletePassword}
          onChange={(e) => setDeletePassword(e.target.value)}
        />
        <label htmlFor="delete-confirm">Type your username to confirm</label>
        <input
          id="delete-confirm"
          required
          autoCapitalize="none"
          spellCheck={false}
          value={confirmName}
          onChange={(e) => setConfirmName(e.target.value)}
        />
        <Feedback status={null} error={deleteError} />
        <button type="submit" className="danger">
          Delete my account
        </button>
      </form>
    </section>
  );
}

/** The id of a `/users/<id>` path, or null. */
export function userIdFromPath(path: string): UserId | null {
  const m = /^\/users\/(\d+)\/?$/.exec(path);
  return m ? Number(m[1]) : null;
}
