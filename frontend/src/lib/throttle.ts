/**
 * Collects keys and calls `flush` with them at most once per `ms` (leading call after the
 * first key arrives, trailing calls for keys that arrive meanwhile).
 */
export function keyedThrottle<K>(ms: number, flush: (keys: Set<K>) => void) {
  let pending = new Set<K>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = 0;
  const run = () => {
    timer = null;
    last = Date.now();
    const keys = pending;
    pending = new Set();
    flush(keys);
  };
  return {
    push(key: K) {
      pending.add(key);
      if (timer) return;
      const wait = Math.max(0, last + ms - Date.now());
      timer = setTimeout(run, wait);
    },
    cancel() {
      if (timer) clearTimeout(timer);
      timer = null;
      pending = new Set();
    },
  };
}
