// Message search: a box in the sidebar, and a results page whose hits open their room at
// the message. Snippets come as plain-text pieces and are rendered as text (React
// escapes it), the matched words in <mark>: no HTML from the server is ever injected.
import { useEffect, useState, type FormEvent } from 'react';
import { describeError, type ChatClient, type SearchHit, type SnippetPart } from '../api';
import { dayLabel, timeLabel } from '../format';

type Nav = (to: string) => void;

/** The search box: submitting opens the results page for the words typed. */
export function SearchBox({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const [q, setQ] = useState('');
  function submit(e: FormEvent) {
    e.preventDefault();
    const words = q.trim();
    if (!words) return;
    searchQuery.set(client, words);
    navigate('/search');
  }
  return (
    <form className="search-box" role="search" onSubmit={submit}>
      <label htmlFor="search-input" className="sr-only">
        Search messages
      </label>
      <input
        id="search-input"
        type="search"
        placeholder="Search messages"
        value={q}
        maxLength={256}
        onChange={(e) => setQ(e.target.value)}
      />
    </form>
  );
}

/** The query the results page shows, per client (the page reads it on mount). */
const searchQuery = {
  values: new WeakMap<ChatClient, string>(),
  set(client: ChatClient, q: string) {
    this.values.set(client, q);
    this.listeners.forEach((fn) => fn());
  },
  get(client: ChatClient): string {
    return this.values.get(client) ?? '';
  },
  listeners: new Set<() => void>(),
};

/** Matched words highlighted, the rest as is; all of it text. */
export function Snippet({ parts }: { parts: SnippetPart[] }) {
  return (
    <span className="snippet">
      {parts.map((p, i) => (p.hit ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>))}
    </span>
  );
}

/** The results page: best first, "More results" pages on by cursor. */
export function SearchPage({ client, navigate }: { client: ChatClient; navigate: Nav }) {
  const [q, setQ] = useState(() => searchQuery.get(client));
  const [hits, setHits] = useState<SearchHit[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [status, setStatus] = useState<'idle' | 'loading' | 'done'>('idle');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const onQuery = () => setQ(searchQuery.get(client));
    searchQuery.listeners.add(onQuery);
    return () => void searchQuery.listeners.delete(onQuery);
  }, [client]);

  useEffect(() => {
    if (!q) return;
    let stale = false;
    setStatus('loading');
    setError(null);
    client.search(q).then(
      (page) => {
        if (stale) return;
        setHits(page.hits);
        setNext(page.next ?? null);
        setStatus('done');
      },
      (err) => {
        if (stale) return;
        setHits([]);
        setNext(null);
        setError(describeError(err));
        setStatus('done');
      },
    );
    return () => {
      stale = true;
    };
  }, [client, q]);

  async function more() {
    if (!next) return;
    setStatus('loading');
    try {
      const page = await client.search(q, next);
      // A cursor may repeat a hit at a page edge on SQLite (docs/protocol.md): dedupe.
      setHits((old) => {
        const seen = new Set(old.map((h) => h.message.id));
        return [...old, ...page.hits.filter((h) => !seen.has(h.message.id))];
      });
      setNext(page.next ?? null);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setStatus('done');
    }
  }

  const now = new Date();
  return (
    <section className="panel search-results" aria-label="Search results">
      <button className="ghost back" onClick={() => navigate('/')} aria-label="Back to rooms">
        ← Rooms
      </button>
      <h2>{q ? `Results for “${q}”` : 'Search messages'}</h2>
      {!q && <p className="muted">Type words in the search box: every word must appear; end a word with * to match its start.</p>}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {status === 'loading' && hits.length === 0 && <p className="muted">Searching…</p>}
      {status === 'done' && !error && hits.length === 0 && <p className="muted">No messages found.</p>}
      <ol className="hit-list" aria-label="Matching messages">
        {hits.map((h) => {
          const m = h.message;
          const when = new Date(m.created_at);
          return (
            <li key={m.id}>
              <button
                className="hit"
                data-testid="search-hit"
                onClick={() => {
                  client.focusOn(m.room_id, m.seq);
                  navigate(`/rooms/${m.room_id}`);
                }}
              >
                <span className="hit-meta muted small">
                  <span className="hit-room">{client.displayName(m.room_id) || `room ${m.room_id}`}</span>
                  {' · '}
                  <span className="author">{m.user.id === client.me?.id ? 'You' : m.user.username}</span>
                  {' · '}
                  <time dateTime={m.created_at}>
                    {dayLabel(when, now)} {timeLabel(when)}
                  </time>
                </span>
                <Snippet parts={h.snippet} />
              </button>
            </li>
          );
        })}
      </ol>
      {next && (
        <button className="link" onClick={() => void more()} disabled={status === 'loading'}>
          More results
        </button>
      )}
    </section>
  );
}
