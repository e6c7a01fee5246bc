// A room's settings, for its admins and owner (docs/protocol.md §6): name, topic, access
// code, public/private; invite links and bans; for the owner, transfer and delete.
import { useState, type FormEvent } from 'react';
import {
  asRole,
  canManageRoom,
  describeError,
  isOwner,
  roomPatch,
  settingsForm,
  type ChatClient,
  type InviteLink,
  type RoomId,
  type RoomSettingsForm,
} from '../api';
import { Feedback } from './Feedback';
import { useLoaded } from './useLoaded';

type Props = { client: ChatClient; roomId: RoomId; onClose: () => void; navigate: (to: string) => void };

export function RoomSettingsPanel({ client, roomId, onClose, navigate }: Props) {
  const state = client.rooms.get(roomId);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  if (!state) return null;
  const role = asRole(state.room.role);

  const run = async (what: () => Promise<void>) => {
    setError(null);
    setStatus(null);
    try {
      await what();
    } catch (err) {
      setError(describeError(err));
    }
  };

  return (
    <div className="room-panel" role="dialog" aria-label="Room settings">
      <div className="room-panel-head">
        <strong>Room settings</strong>
        <button className="ghost small" onClick={onClose} aria-label="Close room settings">
          ✕
        </button>
      </div>
      {canManageRoom(role) ? (
        <>
          <SettingsForm client={client} roomId={roomId} run={run} setStatus={setStatus} />
          <LinkList client={client} roomId={roomId} run={run} />
          <BanList client={client} roomId={roomId} run={run} />
          {isOwner(role) && <OwnerActions client={client} roomId={roomId} run={run} navigate={navigate} setStatus={setStatus} />}
        </>
      ) : (
        <p className="muted small">Only the room’s admins and owner can change its settings.</p>
      )}
      <Feedback status={status} error={error} />
    </div>
  );
}

type Run = (what: () => Promise<void>) => Promise<void>;

function SettingsForm({
  client,
  roomId,
  run,
  setStatus,
}: {
  client: ChatClient;
  roomId: RoomId;
  run: Run;
  setStatus: (s: string) => void;
}) {
  const room = client.rooms.get(roomId)!.room;
  const [form, setForm] = useState<RoomSettingsForm>(() => settingsForm(room));
  const set = (p: Partial<RoomSettingsForm>) => setForm((f) => ({ ...f, ...p }));

  function save(e: FormEvent) {
    e.preventDefault();
    const patch = roomPatch(room, form);
    if (!patch) {
      setStatus('Nothing to change.');
      return;
    }
    void run(async () => {
      const view = await client.updateRoom(roomId, patch);
      setForm(settingsForm(view));
      setStatus('Settings saved.');
    });
  }

  return (
    <form className="form" onSubmit={save}>
      <label htmlFor="settings-name">Name</label>
      <input id="settings-name" required maxLength={64} value={form.name} onChange={(e) => set({ name: e.target.value })} />
      <label htmlFor="settings-topic">Topic</label>
      <input id="settings-topic" maxLength={256} value={form.topic} onChange={(e) => set({ topic: e.target.value })} />
      <label className="checkbox">
        <input type="checkbox" checked={form.isPrivate} onChange={(e) => set({ isPrivate: e.target.checked })} /> Private room
      </label>
      {form.isPrivate && (
        <>
          <label htmlFor="settings-code">
            {room.has_access_code ? 'New access code (leave blank to keep it)' : 'Access code (optional)'}
          </label>
          <input
            id="settings-code"
            type="password"
            autoComplete="new-password"
            minLength={8}
            maxLength={64}
            value={form.accessCode}
            onChange={(e) => set({ accessCode: e.target.value })}
          />
          {room.has_access_code && (
            <label className="checkbox">
              <input
                type="checkbox"
                checked={form.clearCode}
                disabled={!!form.accessCode}
                onChange={(e) => set({ clearCode: e.target.checked })}
              />{' '}
              Clear the access code (invitations and links only)
            </label>
          )}
        </>
      )}
      <button type="submit" className="primary">
        Save settings
      </button>
    </form>
  );
}

function linkLabel(l: InviteLink): string {
  const uses = l.max_uses != null ? `${l.uses} of ${l.max_uses} uses` : `${l.uses} use${l.uses === 1 ? '' : 's'}`;
  const expiry = l.expires_at ? ` · expires ${new Date(l.expires_at).toLocaleString()}` : '';
  return `Link #${l.id} · ${uses}${expiry}${l.revoked ? ' · revoked' : ''}`;
}

function LinkList({ client, roomId, run }: { client: ChatClient; roomId: RoomId; run: Run }) {
  const [reload, setReload] = useState(0);
  const [links, loadError] = useLoaded(() => client.inviteLinks(roomId), [client, roomId, reload]);
  return (
    <section aria-label="Invite links">
      <h3 className="panel-subhead">Invite links</h3>
      {loadError && <p className="error small">{loadError}</p>}
      {links === null ? (
        <p className="muted small">Loading links…</p>
      ) : links.length === 0 ? (
        <p className="muted small">No invite links.</p>
      ) : (
        <ul className="member-list">
          {links.map((l) => (
            <li key={l.id} data-testid="invite-link">
              <span className="member-name">{linkLabel(l)}</span>
              {!l.revoked && (
                <span className="member-actions">
                  <button
                    className="small"
                    aria-label={`Revoke link #${l.id}`}
                    onClick={() =>
                      void run(async () => {
                        await client.revokeInviteLink(roomId, l.id);
                        setReload((n) => n + 1);
                      })
                    }
                  >
                    Revoke
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function BanList({ client, roomId, run }: { client: ChatClient; roomId: RoomId; run: Run }) {
  const eventCount = client.rooms.get(roomId)?.eventCount ?? 0;
  const [reload, setReload] = useState(0);
  const [bans, loadError] = useLoaded(() => client.bans(roomId), [client, roomId, eventCount, reload]);
  return (
    <section aria-label="Bans">
      <h3 className="panel-subhead">Banned</h3>
      {loadError && <p className="error small">{loadError}</p>}
      {bans === null ? (
        <p className="muted small">Loading bans…</p>
      ) : bans.length === 0 ? (
        <p className="muted small">Nobody is banned.</p>
      ) : (
        <ul className="member-list">
          {bans.map((b) => (
            <li key={b.user.id} data-testid="ban">
              <span className="member-name">{b.user.username}</span>
              <span className="muted small">
                {b.reason ? `${b.reason} · ` : ''}
                {b.until ? `until ${new Date(b.until).toLocaleString()}` : 'permanent'}
              </span>
              <span className="member-actions">
                <button
                  className="small"
                  aria-label={`Unban ${b.user.username}`}
                  onClick={() =>
                    void run(async () => {
                      await client.unban(roomId, b.user.id);
                      setReload((n) => n + 1);
                    })
                  }
                >
                  Unban
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function OwnerActions({
  client,
  roomId,
  run,
  navigate,
  setStatus,
}: {
  client: ChatClient;
  roomId: RoomId;
  run: Run;
  navigate: (to: string) => void;
  setStatus: (s: string) => void;
}) {
  const me = client.me;
  const name = client.rooms.get(roomId)?.room.name ?? '';
  const [members] = useLoaded(() => client.members(roomId), [client, roomId]);
  const others = (members ?? []).filter((m) => m.user.id !== me?.id);
  const [target, setTarget] = useState('');

  function transfer(e: FormEvent) {
    e.preventDefault();
    const m = others.find((o) => String(o.user.id) === target);
    if (!m || !window.confirm(`Make ${m.user.username} the owner of “${name}”? You become an admin.`)) return;
    void run(async () => {
      await client.transfer(roomId, m.user.id);
      setStatus(`${m.user.username} now owns the room.`);
    });
  }

  function remove() {
    if (!window.confirm(`Delete “${name}” and all its messages for everyone? This cannot be undone.`)) return;
    void run(async () => {
      await client.deleteRoom(roomId);
      navigate('/');
    });
  }

  return (
    <section aria-label="Owner actions">
      <h3 className="panel-subhead">Owner</h3>
      <form className="inline-form" onSubmit={transfer}>
        <label htmlFor="transfer-to">Transfer ownership to</label>
        <select id="transfer-to" required value={target} onChange={(e) => setTarget(e.target.value)}>
          <option value="">Choose a member…</option>
          {others.map((m) => (
            <option key={m.user.id} value={m.user.id}>
              {m.user.username}
            </option>
          ))}
        </select>
        <button type="submit" disabled={!target}>
          Transfer
        </button>
      </form>
      <button className="danger" onClick={remove}>
        Delete room
      </button>
    </section>
  );
}
