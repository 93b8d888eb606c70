import { useEffect, useState } from 'react';

/** The time now, re-read every `ms` (one clock for a page's countdowns); stopped when `active` is false. */
export function useNow(ms = 1000, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return now;
}
