// A message's life after it is sent, in the conversation: its reply quote, content (or
// tombstone, or an inline editor), reactions and actions (reply, react, edit, delete),
// and the reply bar above the composer. ChatView hooks these in with a few lines.
import { useState, type FormEvent, type KeyboardEvent } from 'react';
import './MessageLifecycle.css';
import { COMMON_REACTIONS, describeError, type ChatClient, type Message, type ReplyQuote, type RoomId } from '../api';

const MAX_CHARS = 4000;

/** The quoted original above a reply; clicking it jumps to the original. */
export function QuoteView({ quote, onJump }: { quote: ReplyQuote; onJump?: (seq: number) => void }) {
  return (
    <button
      type="button"
      className={`quote${quote.deleted ? ' deleted' : ''}`}
      data-testid="reply-quote"
      onClick={() => onJump?.(quote.seq)}
      aria-label={`Reply to ${quote.user.username}: ${quote.excerpt}. Show the original`}
    >
      <span className="quote-author">{quote.user.username}</span>
      <span className="quote-excerpt">{quote.excerpt}</span>
    </button>
  );
}

type BodyProps = {
  client: ChatClient;
  roomId: RoomId;
  message: Message;
  mine: boolean;
  /** Whether the viewer may delete other people's messages (admin or owner). */
  moderator: boolean;
  onReply: (m: Message) => void;
  onJump: (seq: number) => void;
};

/** Everything of a chat message below its meta line. */
export function MessageBody({ client, roomId, message: m, mine, moderator, onReply, onJump }: BodyProps) {
  const [editing, setEditing] = useState(false);
  const [picking, setPicking] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function run(action: () => Promise<void>) {
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(describeError(err));
    }
  }

  if (m.deleted) {
    return (
      <div className="content tombstone" data-testid="tombstone">
        This message was deleted.
      </div>
    );
  }
  return (
    <>
      {m.reply_to && <QuoteView quote={m.reply_to} onJump={onJump} />}
      {editing ? (
        <InlineEditor
          initial={m.content}
          onCancel={() => setEditing(false)}
          onSave={(text) =>
            run(async () => {
              await client.editMessage(roomId, m.id, text);
              setEditing(false);
            })
          }
        />
      ) : (
        <>
          <div className="content">{m.content}</div>
          {m.edited_at && (
            <div className="edited muted small" data-testid="edited" title={`Edited ${new Date(m.edited_at).toLocaleString()}`}>
              (edited)
            </div>
          )}
        </>
      )}
      {(m.reactions?.length ?? 0) > 0 && (
        <div className="reactions" aria-label="Reactions">
          {m.reactions!.map((r) => (
            <button
              key={r.emoji}
              type="button"
              className={`chip${r.me ? ' me' : ''}`}
              aria-pressed={r.me}
              data-testid="reaction"
              aria-label={`${r.emoji} ${r.count}${r.me ? ', including you' : ''}`}
              onClick={() => void run(() => client.toggleReaction(roomId, m, r.emoji))}
            >
              {r.emoji} <span className="count">{r.count}</span>
            </button>
          ))}
        </div>
      )}
      {!editing && (
        <div className="msg-actions">
          <button type="button" className="link small" onClick={() => onReply(m)}>
            Reply
          </button>
          <button type="button" className="link small" aria-expanded={picking} onClick={() => setPicking(!picking)}>
            React
          </button>
          {mine && (
            <button type="button" className="link small" onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
          {(mine || moderator) && (
            <button
              type="button"
              className="link small danger"
              onClick={() => {
                if (window.confirm('Delete this message for everyone?')) void run(() => client.deleteMessage(roomId, m.id));
              }}
            >
              Delete
            </button>
          )}
        </div>
      )}
      {picking && (
        <div className="picker" role="group" aria-label="Pick a reaction">
          {COMMON_REACTIONS.map((emoji) => (
            <button
              key={emoji}
              type="button"
              className="chip"
              aria-label={`React ${emoji}`}
              onClick={() => {
                setPicking(false);
                void run(() => client.toggleReaction(roomId, m, emoji));
              }}
            >
              {emoji}
            </button>
          ))}
        </div>
      )}
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
    </>
  );
}

function InlineEditor({
  initial,
  onSave,
  onCancel,
}: {
  initial: string;
  onSave: (text: string) => void;
  onCancel: () => void;
}) {
  const [text, setText] = useState(initial);
  const trimmed = text.trim();
  function submit(e?: FormEvent) {
    e?.preventDefault();
    if (!trimmed || text.length > MAX_CHARS) return;
    if (trimmed === initial) onCancel();
    else onSave(trimmed);
  }
  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape') onCancel();
  }
  return (
    <form className="edit-form" onSubmit={submit}>
      <label className="sr-only" htmlFor="edit-input">
        Edit message
      </label>
      <textarea id="edit-input" autoFocus rows={2} value={text} onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown} />
      <div className="edit-buttons">
        <button type="submit" className="primary small" disabled={!trimmed || text.length > MAX_CHARS}>
          Save
        </button>
        <button type="button" className="ghost small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Above the composer while replying: what the next message answers. */
export function ReplyBar({ message, onCancel }: { message: Message; onCancel: () => void }) {
  return (
    <div className="reply-bar" data-testid="reply-bar">
      <span className="muted small">Replying to</span>{' '}
      <span className="quote-author">{message.user.username}</span>{' '}
      <span className="quote-excerpt">{[...message.content].slice(0, 100).join('')}</span>
      <button type="button" className="ghost small" onClick={onCancel} aria-label="Cancel reply">
        ✕
      </button>
    </div>
  );
}
