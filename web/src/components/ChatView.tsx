import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { PeerPresence } from './Account';
import { asRole, canManageRoom, describeError, type ChatClient, type Message, type PendingMessage, type RoomId } from '../api';
import { dayKey, dayLabel, timeLabel } from '../format';
import { pendingLabel } from '../api/outbox';
import { DirectIcon, RoomIcon } from './Icons';
import { InvitePanel, MembersPanel } from './RoomPanels';
import { BlockButton } from './People';
import { RoomSettingsPanel } from './RoomSettings';
import { SeenBy, UnreadDivider, useFocusMessage, useReadOnScreen, useScrollToDivider, useUnreadDivider } from './Reading';
import { MessageBody, ReplyBar } from './MessageLifecycle';
import { AttachButton, AttachmentList, DraftList, useDraftAttachments } from './Attachments';

type Props = { client: ChatClient; roomId: RoomId; navigate: (to: string) => void };

const MAX_CHARS = 4000;

export function ChatView({ client, roomId, navigate }: Props) {
  const state = client.rooms.get(roomId);
  const [lookup, setLookup] = useState<'idle' | 'loading' | 'missing' | string>('idle');

  useEffect(() => {
    if (state || lookup !== 'idle') return;
    setLookup('loading');
    client.loadRoom(roomId).then(
      (r) => setLookup(r ? 'idle' : 'missing'),
      (err) => setLookup(describeError(err)),
    );
  }, [client, roomId, state, lookup]);

  if (!state) {
    return (
      <section className="panel">
        <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
          ← Rooms
        </button>
        {lookup === 'missing' ? (
          <>
            <h2>Room not found</h2>
            <p>There is no room {roomId}, or it is private. If you have its access code, join it:</p>
            <JoinPrompt client={client} roomId={roomId} isPrivate />
          </>
        ) : lookup === 'loading' || lookup === 'idle' ? (
          <p className="muted">Loading room…</p>
        ) : (
          <p className="error" role="alert">
            {lookup}
          </p>
        )}
      </section>
    );
  }
  if (!state.room.is_member) {
    return (
      <section className="panel">
        <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
          ← Rooms
        </button>
        <h2>{state.room.name}</h2>
        <p>You are not a member of this room yet.</p>
        <JoinPrompt client={client} roomId={roomId} isPrivate={state.room.is_private} />
      </section>
    );
  }
  return <Conversation client={client} roomId={roomId} navigate={navigate} />;
}

function JoinPrompt({ client, roomId, isPrivate }: { client: ChatClient; roomId: RoomId; isPrivate: boolean }) {
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      await client.joinRoom(roomId, isPrivate ? code : undefined);
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <form onSubmit={submit} className="form">
      {isPrivate && (
        <>
          <label htmlFor="prompt-code">Access code</label>
          <input id="prompt-code" required value={code} onChange={(e) => setCode(e.target.value)} />
        </>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="primary">
        Join room
      </button>
    </form>
  );
}

type Row =
  | { kind: 'day'; key: string; label: string }
  | { kind: 'msg'; key: string; message: Message }
  | { kind: 'pending'; key: string; pending: PendingMessage }
  | { kind: 'divider'; key: string };

/** `rows` with the "new messages" divider above the message `seq` (if shown). */
function withDivider(rows: Row[], seq: number | undefined): Row[] {
  const at = seq === undefined ? -1 : rows.findIndex((r) => r.kind === 'msg' && r.message.seq === seq);
  return at < 0 ? rows : [...rows.slice(0, at), { kind: 'divider', key: 'unread-divider' }, ...rows.slice(at)];
}

function buildRows(messages: Message[], pending: PendingMessage[], now: Date): Row[] {
  const rows: Row[] = [];
  let lastDay = '';
  for (const m of messages) {
    const d = new Date(m.created_at);
    const k = dayKey(d);
    if (k !== lastDay) {
      rows.push({ kind: 'day', key: `day-${k}`, label: dayLabel(d, now) });
      lastDay = k;
    }
    rows.push({ kind: 'msg', key: `m-${m.seq}`, message: m });
  }
  if (pending.length) {
    const k = dayKey(now);
    if (k !== lastDay) rows.push({ kind: 'day', key: `day-${k}`, label: dayLabel(now, now) });
  }
  for (const p of pending) rows.push({ kind: 'pending', key: `p-${p.clientMsgId}`, pending: p });
  return rows;
}

function Conversation({ client, roomId, navigate }: Props) {
  const state = client.rooms.get(roomId)!;
  const { room, timeline } = state;
  const me = client.me;
  const listRef = useRef<HTMLOListElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const [draft, setDraft] = useState('');
  const [leaveError, setLeaveError] = useState<string | null>(null);
  const [panel, setPanel] = useState<'invite' | 'members' | 'settings' | null>(null);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const title = client.displayName(roomId);
  const stick = useRef(true);
  const restore = useRef<{ height: number; top: number } | null>(null);
  const drafts = useDraftAttachments(client);

  const dividerSeq = useUnreadDivider(client, roomId);
  const rows = withDivider(buildRows(timeline.messages, timeline.pending, new Date()), dividerSeq);
  const lastKey = rows.length ? rows[rows.length - 1].key : '';
  const firstKey = rows.length ? rows[0].key : '';

  // Keep the view pinned to the bottom for new messages; keep position when older
  // messages are prepended.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el) return;
    if (restore.current) {
      el.scrollTop = el.scrollHeight - restore.current.height + restore.current.top;
      restore.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [lastKey, firstKey, rows.length]);
  const focusedSeq = useFocusMessage(client, roomId, listRef, stick);
  useScrollToDivider(listRef, focusedSeq === null ? dividerSeq : undefined, stick, timeline.olderCursor !== undefined);
  useReadOnScreen(client, roomId, listRef);

  useEffect(() => {
    inputRef.current?.focus();
  }, [roomId]);

  async function onScroll() {
    const el = listRef.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
    if (el.scrollTop < 80 && timeline.olderCursor && !state.loadingHistory) {
      restore.current = { height: el.scrollHeight, top: el.scrollTop };
      const added = await client.loadOlder(roomId);
      if (!added) restore.current = null;
    }
  }

  function send(e?: FormEvent) {
    e?.preventDefault();
    const text = draft.trim();
    if ((!text && !drafts.ready.length) || text.length > MAX_CHARS || drafts.busy) return;
    client.send(roomId, text, { replyTo: replyTo?.id, attachments: drafts.ready });
    drafts.clear();
    stick.current = true;
    setDraft('');
    setReplyTo(null);
  }

  /** Scrolls to the message `seq` (loading older pages until it is there) and flashes it. */
  async function jump(seq: number) {
    stick.current = false;
    if (!(await client.reveal(roomId, seq))) return;
    requestAnimationFrame(() => {
      const el = listRef.current?.querySelector<HTMLElement>(`[data-seq="${seq}"]`);
      if (!el) return;
      el.scrollIntoView({ block: 'center' });
      el.classList.add('flash');
      setTimeout(() => el.classList.remove('flash'), 1_500);
    });
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  }

  async function leave() {
    if (!window.confirm(`Leave “${room.name}”?`)) return;
    try {
      await client.leaveRoom(roomId);
      navigate('/');
    } catch (err) {
      setLeaveError(describeError(err));
    }
  }

  const online = [...state.online.values()].sort((a, b) => a.username.localeCompare(b.username));
  const typing = client.typingUsers(roomId);
  const tooLong = draft.length > MAX_CHARS;

  return (
    <section className="chat" aria-label={room.is_direct ? `Direct message with ${title}` : `Room ${room.name}`}>
      <header className="chat-header">
        <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
          ←
        </button>
        <div className="chat-title">
          <h2>
            {room.is_direct ? <DirectIcon /> : <RoomIcon isPrivate={room.is_private} />}{' '}
            {title}
          </h2>
          {room.is_direct ? (
            client.peers.get(roomId) ? (
              <PeerPresence client={client} userId={client.peers.get(roomId)!.id} />
            ) : (
              <p className="muted small">Direct message</p>
            )
          ) : (
            <p className="muted small">
              Room ID <span data-testid="room-id">{room.id}</span>
              {room.is_private ? ' · private' : ' · public'} · {room.member_count} member
              {room.member_count === 1 ? '' : 's'}
              {room.role ? ` · you are ${room.role}` : ''}
            </p>
          )}
          {!room.is_direct && room.topic && (
            <p className="small room-topic" data-testid="room-topic">
              {room.topic}
            </p>
          )}
        </div>
        {!room.is_direct && (
          <>
            <button className="ghost small" aria-expanded={panel === 'invite'} onClick={() => setPanel(panel === 'invite' ? null : 'invite')}>
              Invite
            </button>
            <button className="ghost small" aria-expanded={panel === 'members'} onClick={() => setPanel(panel === 'members' ? null : 'members')}>
              Members
            </button>
            {canManageRoom(asRole(room.role)) && (
              <button
                className="ghost small"
                aria-expanded={panel === 'settings'}
                onClick={() => setPanel(panel === 'settings' ? null : 'settings')}
              >
                Settings
              </button>
            )}
          </>
        )}
        {room.is_direct && client.peers.get(roomId) && <BlockButton client={client} peer={client.peers.get(roomId)!} />}
        <button className="ghost small" onClick={() => void leave()}>
          Leave
        </button>
      </header>
      {panel === 'invite' && <InvitePanel client={client} roomId={roomId} onClose={() => setPanel(null)} />}
      {panel === 'members' && <MembersPanel client={client} roomId={roomId} onClose={() => setPanel(null)} />}
      {panel === 'settings' && (
        <RoomSettingsPanel client={client} roomId={roomId} onClose={() => setPanel(null)} navigate={navigate} />
      )}
      <div className="presence" aria-label="Online in this room" data-testid="presence">
        <span className="muted small">Online:</span>
        {online.length === 0 ? (
          <span className="muted small">{state.joined ? 'nobody' : '—'}</span>
        ) : (
          online.map((u) => (
            <span key={u.id} className="pill" data-testid="online-user">
              <span className="dot online" aria-hidden="true" />
              {u.username}
              {u.id === me?.id ? ' (you)' : ''}
            </span>
          ))
        )}
      </div>
      {(state.error || leaveError) && (
        <p className="error banner" role="alert">
          {state.error || leaveError}
        </p>
      )}
      <ol className="messages" ref={listRef} onScroll={() => void onScroll()} aria-label="Messages" role="log" tabIndex={0}>
        <li className="history-edge muted small" aria-live="polite">
          {state.loadingHistory
            ? 'Loading messages…'
            : timeline.olderCursor === null
              ? timeline.messages.length
                ? 'Beginning of the conversation'
                : 'No messages yet. Say hello!'
              : timeline.olderCursor !== undefined
                ? (
                    <button className="link" onClick={() => void client.loadOlder(roomId)}>
                      Load older messages
                    </button>
                  )
                : ''}
        </li>
        {rows.map((row) => {
          if (row.kind === 'divider') return <UnreadDivider key={row.key} />;
          if (row.kind === 'day') {
            return (
              <li key={row.key} className="day" role="separator" aria-label={row.label}>
                <span>{row.label}</span>
              </li>
            );
          }
          if (row.kind === 'msg') {
            const m = row.message;
            if (m.event) {
              // A room event (roles, kicks, settings): a line of the stream, nobody's bubble.
              return (
                <li key={row.key} className="room-event" data-seq={m.seq} data-status="sent" data-testid="message" data-event={m.event.type}>
                  <span className="content">{m.content}</span>{' '}
                  <time dateTime={m.created_at}>{timeLabel(new Date(m.created_at))}</time>
                </li>
              );
            }
            const mine = m.user.id === me?.id;
            return (
              <li key={row.key} className={`msg${mine ? ' mine' : ''}${m.seq === focusedSeq ? ' focused' : ''}`} data-seq={m.seq} data-status="sent" data-testid="message">
                <div className="meta">
                  <span className="author">{mine ? 'You' : m.user.username}</span>
                  <time dateTime={m.created_at}>{timeLabel(new Date(m.created_at))}</time>
                  {mine && (
                    <span className="status" aria-label="Delivered">
                      ✓
                    </span>
                  )}
                </div>
                <MessageBody
                  client={client}
                  roomId={roomId}
                  message={m}
                  mine={mine}
                  moderator={canManageRoom(asRole(room.role))}
                  onReply={(target) => {
                    setReplyTo(target);
                    inputRef.current?.focus();
                  }}
                  onJump={(seq) => void jump(seq)}
                />
                {m.attachments?.length ? <AttachmentList client={client} attachments={m.attachments} /> : null}
              </li>
            );
          }
          const p = row.pending;
          return (
            <li key={row.key} className={`msg mine pending ${p.status}`} data-status={p.status} data-testid="message">
              <div className="meta">
                <span className="author">You</span>
                <span className="status">{pendingLabel(p, client.conn)}</span>
              </div>
              {p.content && <div className="content">{p.content}</div>}
              {p.attachments?.length ? <AttachmentList client={client} attachments={p.attachments} /> : null}
              {p.status === 'failed' && (
                <div className="failed">
                  <span role="alert">{p.error}</span>
                  {p.retryable && (
                    <button className="link" onClick={() => client.retry(roomId, p.clientMsgId)}>
                      Retry
                    </button>
                  )}
                  <button className="link" onClick={() => client.discard(roomId, p.clientMsgId)}>
                    Discard
                  </button>
                </div>
              )}
            </li>
          );
        })}
        <SeenBy client={client} roomId={roomId} />
      </ol>
      <div className="typing" aria-live="polite" data-testid="typing">
        {typing.length === 1
          ? `${typing[0].username} is typing…`
          : typing.length > 1
            ? `${typing.map((u) => u.username).join(', ')} are typing…`
            : ''}
      </div>
      {replyTo && <ReplyBar message={replyTo} onCancel={() => setReplyTo(null)} />}
      <DraftList drafts={drafts} />
      <form className="composer" onSubmit={send} onDragOver={drafts.onDragOver} onDrop={drafts.onDrop}>
        <AttachButton drafts={drafts} />
        <label htmlFor="composer-input" className="sr-only">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={inputRef}
          rows={1}
          placeholder={`Message ${room.is_private ? '' : '#'}${title}`}
          aria-describedby="composer-help"
          value={draft}
          onChange={(e) => {
            setDraft(e.target.value);
            if (e.target.value.trim()) client.typing(roomId);
          }}
          onKeyDown={onKeyDown}
          onPaste={drafts.onPaste}
        />
        <button
          type="submit"
          className="primary"
          disabled={(!draft.trim() && !drafts.ready.length) || tooLong || drafts.busy}
          aria-label="Send message"
        >
          Send
        </button>
        <p id="composer-help" className={tooLong ? 'error small' : 'sr-only'}>
          {tooLong
            ? `That message is too long (${draft.length} of ${MAX_CHARS} characters).`
            : 'Press Enter to send, Shift+Enter for a new line.'}
        </p>
      </form>
    </section>
  );
}
