import { useEffect, useState, type DependencyList } from 'react';
import { describeError } from '../api';

/**
 * What `load` resolves to (null while loading) and why it failed, reloaded whenever `deps`
 * change; an answer that comes after the component moved on is dropped.
 */
export function useLoaded<T>(load: () => Promise<T>, deps: DependencyList): [T | null, string | null] {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => {
        if (!live) return;
        setValue(v);
        setError(null);
      },
      (err) => live && setError(describeError(err)),
    );
    return () => {
      live = false;
    };
    // `deps` are the caller's: they name everything `load` reads.
  }, deps);
  return [value, error];
}
