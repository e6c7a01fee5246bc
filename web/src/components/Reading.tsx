// Reading state in the open room: marking read what is actually on screen, the "new
// messages" divider, "seen by" under the latest message, and opening the room at a
// message (a search result). Hooked into ChatView with a few lines.
import { useEffect, useLayoutEffect, useRef, useState, type RefObject } from 'react';
import { firstUnreadSeq, latestChat, seenBy, seenByLabel, type ChatClient, type RoomId, type Seq } from '../api';

/** Most history pages loaded backwards to reach a message opened from search. */
const MAX_FOCUS_PAGES = 100;

/**
 * Reports the messages the user has on screen (at least half visible in the list) to
 * the client, which marks the room read up to the newest of them. Without
 * IntersectionObserver (old browsers, tests) the newest message counts as seen.
 */
export function useReadOnScreen(client: ChatClient, roomId: RoomId, listRef: RefObject<HTMLElement | null>): void {
  const observer = useRef<IntersectionObserver | null>(null);
  useEffect(() => {
    const list = listRef.current;
    if (!list || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver(
      (entries) => {
        // Before the newest page is in, a live message alone on screen is not "read up
        // to here": the history below it was never shown.
        if (client.rooms.get(roomId)?.timeline.olderCursor === undefined) return;
        let newest = 0;
        for (const e of entries) {
          if (!e.isIntersecting) continue;
          const seq = Number((e.target as HTMLElement).dataset.seq);
          if (Number.isInteger(seq)) newest = Math.max(newest, seq);
        }
        if (newest > 0) client.sawMessage(roomId, newest);
      },
      { root: list, threshold: 0.5 },
    );
    observer.current = io;
    return () => {
      io.disconnect();
      observer.current = null;
    };
  }, [client, roomId, listRef]);
  // After every render: watch the rows that appeared (observing one twice is a no-op).
  useEffect(() => {
    const list = listRef.current;
    if (!list) return;
    if (!observer.current) {
      const newest = client.rooms.get(roomId)?.timeline.highestSeq() ?? 0;
      if (typeof IntersectionObserver === 'undefined' && newest > 0) client.sawMessage(roomId, newest);
      return;
    }
    for (const el of list.querySelectorAll<HTMLElement>('li[data-seq]')) observer.current.observe(el);
  });
}

/**
 * The seq the "new messages" divider goes above: the first message of others after the
 * read marker the room was opened with. It stays put while the room is open.
 */
export function useUnreadDivider(client: ChatClient, roomId: RoomId): Seq | undefined {
  const state = client.rooms.get(roomId);
  const [readAtOpen] = useState(() => (state && client.unread(roomId) > 0 ? state.room.last_read_seq : null));
  if (!state || readAtOpen === null) return undefined;
  return firstUnreadSeq(state.timeline.messages, readAtOpen, client.me?.id);
}

/** The divider row itself. */
export function UnreadDivider() {
  return (
    <li className="unread-divider" role="separator" aria-label="New messages" data-testid="unread-divider">
      <span>New messages</span>
    </li>
  );
}

/**
 * Scrolls to the divider once when the room opens with unread messages, instead of the
 * bottom, so what is unread is read from its start. `stick` is the view's "follow the
 * newest message" flag, turned off here; `loaded`: the newest history page is in.
 */
export function useScrollToDivider(
  listRef: RefObject<HTMLElement | null>,
  dividerSeq: Seq | undefined,
  stick: { current: boolean },
  loaded: boolean,
): void {
  const done = useRef(false);
  useLayoutEffect(() => {
    // Only once the newest page is in: live messages may have come before it.
    if (done.current || dividerSeq === undefined || !loaded) return;
    const el = listRef.current?.querySelector<HTMLElement>('[data-testid="unread-divider"]');
    if (!el) return;
    done.current = true;
    const list = listRef.current!;
    list.scrollTop = Math.max(0, el.offsetTop - list.offsetTop - 40);
    stick.current = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  });
}

/**
 * Opens the room at the message the client was asked to focus (a search result): loads
 * history backwards until it is there, scrolls it to the middle and highlights it.
 * Returns the focused seq (for the highlight).
 */
export function useFocusMessage(
  client: ChatClient,
  roomId: RoomId,
  listRef: RefObject<HTMLElement | null>,
  stick: { current: boolean },
): Seq | null {
  const request = client.focusRequest;
  const [focused, setFocused] = useState<Seq | null>(null);
  const [ready, setReady] = useState<Seq | null>(null);
  // Loading stops when the view goes, not when the request is taken (which re-renders).
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);
  useEffect(() => {
    if (!request || request.roomId !== roomId) return;
    client.focusRequest = null;
    const { seq } = request;
    setFocused(seq);
    stick.current = false;
    void (async () => {
      for (let page = 0; page < MAX_FOCUS_PAGES && alive.current; page++) {
        const r = client.rooms.get(roomId);
        if (!r) return;
        const oldest = r.timeline.oldestSeq();
        if (r.timeline.olderCursor !== undefined && oldest !== undefined && oldest <= seq) break;
        if (r.timeline.olderCursor === null) break;
        if (r.loadingHistory) await nextChange(client);
        else await client.loadOlder(roomId);
      }
      if (alive.current) setReady(seq);
    })();
  }, [client, roomId, request, stick]);
  useLayoutEffect(() => {
    if (ready === null) return;
    const el = listRef.current?.querySelector<HTMLElement>(`li[data-seq="${ready}"]`);
    if (!el) return;
    setReady(null);
    stick.current = false;
    el.scrollIntoView({ block: 'center' });
  });
  return focused;
}

/** Resolves on the client's next change. */
function nextChange(client: ChatClient): Promise<void> {
  return new Promise((resolve) => {
    const off = client.subscribe(() => {
      off();
      resolve();
    });
  });
}

/** "Seen by …" under the latest message of a small room, from the members' read markers. */
export function SeenBy({ client, roomId }: { client: ChatClient; roomId: RoomId }) {
  const state = client.rooms.get(roomId);
  const receipts = client.receipts.get(roomId);
  if (!state || !receipts) return null;
  const latest = latestChat(state.timeline.messages);
  if (!latest) return null;
  const label = seenByLabel(seenBy(receipts.values(), latest, client.me?.id), state.room.is_direct);
  if (!label) return null;
  return (
    <li className="seen-by muted small" data-testid="seen-by" aria-live="polite">
      {label}
    </li>
  );
}
