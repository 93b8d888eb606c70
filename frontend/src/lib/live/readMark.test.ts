import { describe, expect, it } from 'vitest';
import { ReadMark } from './readMark';
import type { ReadFrom } from './client';

// No LiveClient in these tests: the socket stands nowhere (`livePosition()` is null).
const answer = (read_position: number | null) => Promise.resolve({ read_position });

describe('ReadMark', () => {
  it('follows the reads from the positions they answered, not from where the socket stood', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(7));
    await mark.read(() => answer(9));
    await mark.read(() => answer(7));
    expect(mark.watch(() => {})).toEqual([7, 9]);
  });

  it('has nothing to follow when nothing was read before the subscription', () => {
    expect(new ReadMark().watch(() => {})).toBeUndefined();
  });

  it('replays from a read answered after the subscription began', async () => {
    const mark = new ReadMark();
    let resolve!: (v: { read_position: number | null }) => void;
    const pending = mark.read(
      () => new Promise<{ read_position: number | null }>((r) => (resolve = r)),
    );
    const late: ReadFrom[] = [];
    expect(mark.watch((from) => late.push(from))).toBeUndefined();
    resolve({ read_position: 4 });
    await pending;
    expect(late).toEqual([[4]]);
  });

  it('records nothing for a read sent while subscribed', async () => {
    const mark = new ReadMark();
    const late: ReadFrom[] = [];
    mark.watch((from) => late.push(from));
    await mark.read(() => answer(3));
    expect(late).toEqual([]);
  });

  it('asks for a read again when a read answered no position and the socket stood nowhere', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(null));
    await mark.read(() => answer(5));
    expect(mark.watch(() => {})).toBeNull();
  });

  it('records nothing for a read that failed', async () => {
    const mark = new ReadMark();
    await expect(mark.read(() => Promise.reject(new Error('503')))).rejects.toThrow('503');
    expect(mark.watch(() => {})).toBeUndefined();
  });

  it('after the subscription ends, stands where the socket stood (nowhere: read again)', () => {
    const mark = new ReadMark();
    mark.watch(() => {});
    mark.unwatch();
    expect(mark.watch(() => {})).toBeNull();
  });
});
