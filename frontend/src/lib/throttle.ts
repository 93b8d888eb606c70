/**
 * Collects keys and calls `flush` with them at most once per `ms` (leading call after the
 * first key arrives, trailing calls for keys that arrive meanwhile). A `flush` that returns a
 * promise runs alone: keys that arrive while it runs wait for it to settle and then go to one
 * more call, so two passes never work from the same state (the Audit tail's reads).
 */
export function keyedThrottle<K>(ms: number, flush: (keys: Set<K>) => void | Promise<unknown>) {
  let pending = new Set<K>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = 0;
  let running = false;
  const schedule = () => {
    if (timer || running || !pending.size) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(run, wait);
  };
  const run = () => {
    timer = null;
    last = Date.now();
    const keys = pending;
    pending = new Set();
    const result = flush(keys);
    if (!result) return;
    running = true;
    // A failed pass is not retried here: the next key (the next event) runs one again.
    const done = () => {
      running = false;
      schedule();
    };
    result.then(done, done);
  };
  return {
    push(key: K) {
      pending.add(key);
      schedule();
    },
    cancel() {
      if (timer) clearTimeout(timer);
      timer = null;
      pending = new Set();
    },
  };
}
