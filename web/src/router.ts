import { useCallback, useEffect, useState } from 'react';

/** A tiny pushState router: the server answers every app path with index.html. */
export function usePath(): [string, (to: string) => void] {
  const [path, setPath] = useState(() => window.location.pathname);
  useEffect(() => {
    const onPop = () => setPath(window.location.pathname);
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const navigate = useCallback((to: string) => {
    if (to !== window.location.pathname) window.history.pushState(null, '', to);
    setPath(to);
  }, []);
  return [path, navigate];
}

export function roomIdFromPath(path: string): number | null {
  const m = /^\/rooms\/(\d+)\/?$/.exec(path);
  return m ? Number(m[1]) : null;
}

/** The token of an invite link's landing page, `/invite/<token>`. */
export function inviteTokenFromPath(path: string): string | null {
  const m = /^\/invite\/([A-Za-z0-9_-]+)\/?$/.exec(path);
  return m ? m[1] : null;
}
