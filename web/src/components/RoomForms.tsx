import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, describeError, type ChatClient, type RoomView } from '../api';

type Props = { client: ChatClient; navigate: (to: string) => void };

function BackButton({ navigate }: { navigate: (to: string) => void }) {
  return (
    <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
      ← Rooms
    </button>
  );
}

export function BrowseRooms({ client, navigate }: Props) {
  const [rooms, setRooms] = useState<RoomView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<number | null>(null);

  useEffect(() => {
    client.refreshRooms().then(setRooms, (err) => setError(describeError(err)));
  }, [client]);

  async function join(room: RoomView) {
    setBusy(room.id);
    setError(null);
    try {
      await client.joinRoom(room.id);
      navigate(`/rooms/${room.id}`);
    } catch (err) {
      setError(describeError(err));
      setBusy(null);
    }
  }

  const visible = (rooms ?? []).filter((r) => !r.is_private || r.is_member);
  return (
    <section className="panel" aria-labelledby="browse-title">
      <BackButton navigate={navigate} />
      <h2 id="browse-title">Public rooms</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rooms === null && !error && <p className="muted">Loading rooms…</p>}
      {rooms !== null && visible.length === 0 && <p className="muted">No rooms yet. Create the first one!</p>}
      <ul className="browse-list">
        {visible.map((room) => (
          <li key={room.id}>
            <div>
              <strong>{room.name}</strong>
              <span className="muted small">
                {' '}
                · {room.member_count} member{room.member_count === 1 ? '' : 's'}
                {room.is_private ? ' · private' : ''}
              </span>
            </div>
            {room.is_member ? (
              <button onClick={() => navigate(`/rooms/${room.id}`)} aria-label={`Open ${room.name}`}>
                Open
              </button>
            ) : (
              <button
                className="primary"
                disabled={busy === room.id}
                onClick={() => void join(room)}
                aria-label={`Join ${room.name}`}
              >
                {busy === room.id ? 'Joining…' : 'Join'}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

export function CreateRoom({ client, navigate }: Props) {
  const [name, setName] = useState('');
  const [isPrivate, setPrivate] = useState(false);
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    // No code: an invitation-only room (people come in by invitation or invite link).
    if (isPrivate && code !== '' && [...code].length < 8) {
      setError('The access code needs at least 8 characters (or leave it empty).');
      return;
    }
    setBusy(true);
    try {
      const room = await client.createRoom(name.trim(), isPrivate, isPrivate && code !== '' ? code : undefined);
      navigate(`/rooms/${room.id}`);
    } catch (err) {
      setError(
        err instanceof ApiError && err.code === 'conflict' ? 'A room with that name already exists.' : describeError(err),
      );
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="create-title">
      <BackButton navigate={navigate} />
      <h2 id="create-title">Create a room</h2>
      <form onSubmit={submit} className="form">
        <label htmlFor="room-name">Room name</label>
        <input id="room-name" required maxLength={64} value={name} onChange={(e) => setName(e.target.value)} />
        <label className="checkbox">
          <input
            type="checkbox"
            checked={isPrivate}
            onChange={(e) => setPrivate(e.target.checked)}
            aria-describedby="private-hint"
          />{' '}
          Private room
        </label>
        <p id="private-hint" className="hint">
          Only people you invite (or, with an access code, people with the room ID and the code) can join a private room.
        </p>
        {isPrivate && (
          <>
            <label htmlFor="room-code">Access code</label>
            <input
              id="room-code"
              minLength={8}
              maxLength={64}
              autoComplete="off"
              value={code}
              onChange={(e) => setCode(e.target.value)}
            />
            <p className="hint">
              Optional. Leave it empty for an invitation-only room: invite people by name or with an invite link.
            </p>
          </>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create room'}
        </button>
      </form>
    </section>
  );
}

export function JoinPrivateRoom({ client, navigate }: Props) {
  const [roomId, setRoomId] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const id = Number(roomId.trim());
    if (!Number.isInteger(id) || id <= 0) {
      setError('The room ID is a number, like 12.');
      return;
    }
    setBusy(true);
    try {
      await client.joinRoom(id, code);
      navigate(`/rooms/${id}`);
    } catch (err) {
      const msg =
        err instanceof ApiError && err.code === 'wrong_access_code'
          ? 'That access code is wrong for this room.'
          : err instanceof ApiError && err.code === 'not_found'
            ? 'There is no room with that ID.'
            : describeError(err);
      setError(msg);
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="join-title">
      <BackButton navigate={navigate} />
      <h2 id="join-title">Join a private room</h2>
      <form onSubmit={submit} className="form">
        <label htmlFor="join-room-id">Room ID</label>
        <input
          id="join-room-id"
          inputMode="numeric"
          pattern="[0-9]*"
          required
          value={roomId}
          onChange={(e) => setRoomId(e.target.value)}
        />
        <label htmlFor="join-code">Access code</label>
        <input id="join-code" required autoComplete="off" value={code} onChange={(e) => setCode(e.target.value)} />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Joining…' : 'Join room'}
        </button>
      </form>
    </section>
  );
}
