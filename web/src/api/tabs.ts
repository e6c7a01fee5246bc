// Coordination between tabs of one browser profile: they share one stored session, so
// they must also share its refreshes. A refresh token is single-use; two tabs spending
// the same one looks like theft to the server, which revokes the whole family and logs
// every tab out.

/**
 * Runs `fn` while holding the lock `name`, exclusively across all tabs of this origin,
 * and resolves to its result. The lock is released when `fn` settles.
 */
export type TabLock = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

/** The part of the Web Locks API (`navigator.locks`) this client uses. */
export interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/**
 * A {@link TabLock} on the Web Locks API. Without it (an insecure context, an old browser) `fn`
 * runs at once: tabs still re-read the stored session before refreshing, which narrows the
 * race to the refresh request itself.
 */
export function webLock(locks: LockManagerLike | undefined = browserLocks()): TabLock {
  return <T>(name: string, fn: () => Promise<T>): Promise<T> => (locks ? locks.request(name, fn) : fn());
}

function browserLocks(): LockManagerLike | undefined {
  const nav = globalThis.navigator as (Navigator & { locks?: LockManagerLike }) | undefined;
  return nav?.locks;
}

/** A lock that only serializes callers in this tab (tests, and stores that are not shared). */
export function localLock(): TabLock {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const run = (tails.get(name) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(name, tail);
    void tail.then(() => {
      if (tails.get(name) === tail) tails.delete(name);
    });
    return run;
  };
}
