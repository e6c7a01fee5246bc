// The outbox: messages written but not yet confirmed by the server, kept in IndexedDB so
// that a reload (or a closed tab, or an app started offline) does not lose them. Each is
// stored with its `client_msg_id`; `ChatClient` sends it again with that same id once the
// socket is ready, and the server's idempotency (unique per room and sender) stores it
// exactly once however often it went out. An entry leaves when the server confirms it
// (ack, chat frame or history), refuses it for good, or the user discards it.
import type { Attachment } from './protocol';
import type { ConnState } from './socket';
import type { PendingMessage } from './timeline';
import type { RoomId, UserId } from './types';

export interface OutboxEntry {
  clientMsgId: string;
  /** The sender: several accounts may use one browser, each sends only its own. */
  userId: UserId;
  roomId: RoomId;
  content: string;
  /** Unix ms when it was written (the order it is shown and sent in). */
  createdAt: number;
  /** The message it answers, when it is a reply. */
  replyTo?: number;
  /** Its uploads (already stored on the server; only their ids are sent). */
  attachments?: Attachment[];
}

export interface Outbox {
  put(entry: OutboxEntry): Promise<void>;
  remove(clientMsgId: string): Promise<void>;
  /** The user's entries, oldest first. */
  list(userId: UserId): Promise<OutboxEntry[]>;
  /** Forgets every entry of every user (logout on a shared device). */
  clear(): Promise<void>;
}

/** The database of the outbox (its own, so it versions apart from the session mirror). */
export const OUTBOX_DB = 'socket-hub-outbox';
const STORE = 'sends';
const BY_USER = 'by_user';

const oldestFirst = (a: OutboxEntry, b: OutboxEntry) => a.createdAt - b.createdAt || a.clientMsgId.localeCompare(b.clientMsgId);

/** Whether a stored value is an entry this version can send (anything else is skipped). */
function isEntry(v: unknown): v is OutboxEntry {
  const e = v as OutboxEntry;
  return (
    !!e &&
    typeof e.clientMsgId === 'string' &&
    typeof e.userId === 'number' &&
    typeof e.roomId === 'number' &&
    typeof e.content === 'string' &&
    typeof e.createdAt === 'number'
  );
}

/**
 * The outbox in IndexedDB (`factory` is `indexedDB`; tests pass fake-indexeddb's). Every
 * call resolves once its transaction has committed, so an entry whose `put` resolved
 * survives a reload.
 */
export function idbOutbox(factory: IDBFactory = globalThis.indexedDB, name = OUTBOX_DB): Outbox {
  let db: Promise<IDBDatabase> | null = null;
  const open = () => {
    db ??= new Promise<IDBDatabase>((ok, fail) => {
      const req = factory.open(name, 1);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, { keyPath: 'clientMsgId' });
        store.createIndex(BY_USER, 'userId');
      };
      req.onsuccess = () => {
        const conn = req.result;
        // Another tab deleting or upgrading the database must not wait on this one.
        conn.onversionchange = () => {
          conn.close();
          db = null;
        };
        ok(conn);
      };
      req.onerror = () => fail(req.error);
      req.onblocked = () => fail(new Error('IndexedDB blocked'));
    });
    db.catch(() => (db = null));
    return db;
  };
  const run = async <T>(mode: IDBTransactionMode, op: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const conn = await open();
    return new Promise<T>((ok, fail) => {
      const tx = conn.transaction(STORE, mode);
      const req = op(tx.objectStore(STORE));
      tx.oncomplete = () => ok(req.result);
      tx.onerror = tx.onabort = () => fail(tx.error ?? req.error);
    });
  };
  return {
    async put(entry) {
      await run('readwrite', (s) => s.put({ ...entry }));
    },
    async remove(clientMsgId) {
      await run('readwrite', (s) => s.delete(clientMsgId));
    },
    async list(userId) {
      const all = await run<unknown[]>('readonly', (s) => s.index(BY_USER).getAll(userId));
      return all.filter(isEntry).sort(oldestFirst);
    },
    async clear() {
      await run('readwrite', (s) => s.clear());
    },
  };
}

/**
 * An outbox in memory: for tests (two `ChatClient`s sharing one stand for a reload) and
 * for browsers without IndexedDB, where unsent messages then live as long as the page.
 */
export function memoryOutbox(): Outbox & { entries: Map<string, OutboxEntry> } {
  const entries = new Map<string, OutboxEntry>();
  return {
    entries,
    async put(entry) {
      entries.set(entry.clientMsgId, { ...entry });
    },
    async remove(clientMsgId) {
      entries.delete(clientMsgId);
    },
    async list(userId) {
      return [...entries.values()].filter((e) => e.userId === userId).sort(oldestFirst);
    },
    async clear() {
      entries.clear();
    },
  };
}

let shared: Outbox | null = null;

/**
 * The outbox of this browser: IndexedDB where there is one (one connection per page),
 * else a memory outbox per caller.
 */
export function defaultOutbox(): Outbox {
  if (!globalThis.indexedDB) return memoryOutbox();
  shared ??= idbOutbox();
  return shared;
}

/**
 * How a pending send is shown: while the connection is down it waits in the outbox (and
 * survives a reload), so the user knows it will go by itself.
 */
export function pendingLabel(p: Pick<PendingMessage, 'status'>, conn: ConnState): string {
  if (p.status === 'failed') return 'Not sent';
  return conn === 'online' ? 'Sending…' : 'Waiting for the network…';
}
