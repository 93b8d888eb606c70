import { afterEach, describe, expect, it, vi } from 'vitest';
import { keyedThrottle } from './throttle';

afterEach(() => vi.useRealTimers());

describe('keyedThrottle', () => {
  it('calls once for a burst of keys, then once more for those that came meanwhile', async () => {
    vi.useFakeTimers();
    const calls: string[][] = [];
    const t = keyedThrottle<string>(200, (keys) => void calls.push([...keys]));
    t.push('a');
    await vi.advanceTimersByTimeAsync(0);
    t.push('b');
    t.push('c');
    await vi.advanceTimersByTimeAsync(250);
    expect(calls).toEqual([['a'], ['b', 'c']]);
  });

  it('does not start a pass while an asynchronous one still runs, and runs one more after it', async () => {
    vi.useFakeTimers();
    let running = 0;
    let overlap = 0;
    let passes = 0;
    const t = keyedThrottle<string>(300, async () => {
      running += 1;
      passes += 1;
      overlap = Math.max(overlap, running);
      await new Promise((r) => setTimeout(r, 1000));
      running -= 1;
    });
    t.push('tail');
    await vi.advanceTimersByTimeAsync(10);
    t.push('tail'); // an event while the first pass reads
    await vi.advanceTimersByTimeAsync(400);
    expect(overlap).toBe(1);
    expect(passes).toBe(1);
    await vi.advanceTimersByTimeAsync(2000);
    expect(passes).toBe(2); // the event that came meanwhile gets its pass
    expect(overlap).toBe(1);
  });

  it('goes on after a pass that failed', async () => {
    vi.useFakeTimers();
    let passes = 0;
    const t = keyedThrottle<string>(100, () => {
      passes += 1;
      return Promise.reject(new Error('503'));
    });
    t.push('tail');
    await vi.advanceTimersByTimeAsync(10);
    t.push('tail');
    await vi.advanceTimersByTimeAsync(200);
    expect(passes).toBe(2);
  });
});
