import { describe, expect, it } from 'vitest';
import { ReadMark } from './readMark';
import type { ReadFrom } from './client';

// No LiveClient in these tests: the socket stands nowhere (`livePosition()` is null).
const answer = (read_position: number | null) => Promise.resolve({ read_position });
const list = ['dlq', 'list'] as const;
const groups = ['dlq', 'groups'] as const;

describe('ReadMark', () => {
  it('follows the reads from the positions they answered, not from where the socket stood', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(7), list);
    await mark.read(() => answer(9), groups);
    expect(mark.watch(() => {})).toEqual([7, 9]);
  });

  it('forgets the position of a read superseded by a newer read of the same data', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(7), list);
    await mark.read(() => answer(2_000_000), list);
    expect(mark.watch(() => {})).toEqual([2_000_000]);
  });

  it("keeps each page of a paged list: a page's rows are as current as its own read", async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(7), list, 0);
    await mark.read(() => answer(9), list, 200);
    await mark.read(() => answer(8), list, 0);
    expect(mark.watch(() => {})).toEqual([9, 8]);
  });

  it('drops the position of a read whose data has left the cache', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(7), list);
    await mark.read(() => answer(9), groups);
    expect(
      mark.watch(
        () => {},
        (query) => query[1] === 'groups',
      ),
    ).toEqual([9]);
  });

  it('has nothing to follow when nothing was read before the subscription', () => {
    expect(new ReadMark().watch(() => {})).toBeUndefined();
  });

  it('replays from a read answered after the subscription began', async () => {
    const mark = new ReadMark();
    let resolve!: (v: { read_position: number | null }) => void;
    const pending = mark.read(
      () => new Promise<{ read_position: number | null }>((r) => (resolve = r)),
      list,
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
    await mark.read(() => answer(3), list);
    expect(late).toEqual([]);
  });

  it('asks for a read again when a read shown answered no position and the socket stood nowhere', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(null), list);
    await mark.read(() => answer(5), groups);
    expect(mark.watch(() => {})).toBeNull();
  });

  it('a newer read of the same data with a position replaces one without', async () => {
    const mark = new ReadMark();
    await mark.read(() => answer(null), list);
    await mark.read(() => answer(5), list);
    expect(mark.watch(() => {})).toEqual([5]);
  });

  it('records nothing for a read that failed', async () => {
    const mark = new ReadMark();
    await expect(mark.read(() => Promise.reject(new Error('503')), list)).rejects.toThrow('503');
    expect(mark.watch(() => {})).toBeUndefined();
  });

  describe('after the subscription ends', () => {
    const followed = async (cached: (q: readonly unknown[]) => boolean) => {
      const mark = new ReadMark();
      mark.watch(() => {}, cached);
      await mark.read(() => answer(3), list);
      mark.unwatch();
      return mark;
    };

    it('what it followed stands where the socket stood (nowhere: read again)', async () => {
      expect((await followed(() => true)).watch(() => {})).toBeNull();
    });

    it('that is forgotten once the data has left the cache', async () => {
      let inCache = true;
      const mark = await followed(() => inCache);
      inCache = false; // the page was away for longer than gcTime
      expect(mark.watch(() => {})).toBeUndefined();
    });

    it('a new read of the data replaces where the socket stood', async () => {
      const mark = await followed(() => true);
      await mark.read(() => answer(2_000_000), list);
      expect(mark.watch(() => {})).toEqual([2_000_000]);
    });
  });
});
