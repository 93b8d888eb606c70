import { hashKey, type QueryKey } from '@tanstack/react-query';
import { livePosition } from './LiveProvider';
import type { ReadFrom } from './client';

/** Where one read's data stands: its query, and the position it is current up to. */
interface Stand {
  query: QueryKey;
  at: number | null;
}

/**
 * Where a feature's reads stand, for `useLiveTopics`' `reads`: the positions that the reads not
 * covered by the feature's subscription answered (`read_position`: the read models' contiguous
 * watermark, every event up to it in commit order is in the answer). The page subscribes its
 * topics from there (client.ts: the server replays after the earliest of them and where the
 * socket stands), so every event its reads do not show arrives, and none that they show is
 * delivered again. A read sent before the subscription and answered after it began is followed
 * then (`replayFrom`). One sent while subscribed needs nothing: the socket delivers what
 * follows, and the reads that events cause wait for them (`min_position`).
 *
 * A position matters only while the data read at it is what the page can show: it is kept per
 * read data (the query key, and the page of a paged query), so a newer read of the same data
 * replaces it, and it is dropped once that query's data has left the cache (TanStack's gcTime
 * after the page unmounted; `watch`'s `cached`). Otherwise a page mounted again hours later,
 * or the Audit tail switched on long after a read, would name an old position beside its fresh
 * reads and the server would replay everything since (or refuse: docs/websocket.md).
 *
 * A read answered without a position (a server that does not know its watermark yet) stands
 * where the client stood when it was sent, as before the watermark; `null` when the client
 * stood nowhere, and the page reads again once subscribed.
 */
export class ReadMark {
  /** Reads answered while not watching, by the data they read. */
  private stands = new Map<string, Stand>();
  /** The data read while watching: current up to where the socket stands when that ends. */
  private followed = new Map<string, QueryKey>();
  private watching = 0;
  private late: ((from: ReadFrom) => void) | null = null;
  /** Whether a query's data is still in the cache (nothing to check without one). */
  private cached: (query: QueryKey) => boolean = () => true;

  /**
   * Sends a read (`send`) of the data of `query` (`page`: which page of a paged query) and
   * records where its answer stands.
   */
  read<T extends { read_position?: number | null }>(
    send: () => Promise<T>,
    query: QueryKey,
    page?: unknown,
  ): Promise<T> {
    const done = this.reading(query, page);
    return send().then((answer) => {
      done(answer.read_position);
      return answer;
    });
  }

  /** Call as a read is sent; call what it returns with the answer's `read_position`. */
  reading(query: QueryKey, page?: unknown): (readPosition: number | null | undefined) => void {
    const id = hashKey([query, page ?? null]);
    if (this.watching > 0) {
      this.followed.set(id, query);
      return () => {};
    }
    const sentAt = livePosition();
    return (readPosition) => {
      const at = typeof readPosition === 'number' ? readPosition : sentAt;
      if (this.watching > 0) {
        this.followed.set(id, query);
        this.late?.(at === null ? null : [at]);
      } else {
        // A newer read of the same data: what an earlier one showed is no longer shown.
        this.stands.delete(id);
        this.stands.set(id, { query, at });
      }
    };
  }

  /**
   * The subscription starts: where the reads it must follow stand (undefined: none), and who
   * to tell about a read answered from now on that was sent before. `cached` says whether a
   * query's data is still in the cache; the positions of data no longer there are dropped.
   */
  watch(late: (from: ReadFrom) => void, cached?: (query: QueryKey) => boolean): ReadFrom {
    this.watching += 1;
    this.late = late;
    if (cached) this.cached = cached;
    let gap = false;
    const from: number[] = [];
    for (const [id, { query, at }] of this.stands) {
      if (!this.cached(query)) continue;
      this.followed.set(id, query);
      if (at === null) gap = true;
      else if (!from.includes(at)) from.push(at);
    }
    this.stands.clear();
    return gap ? null : from.length ? from : undefined;
  }

  /**
   * The subscription ends: the data it followed (still in the cache) stays current up to
   * where the client stands now.
   */
  unwatch(): void {
    this.watching = Math.max(0, this.watching - 1);
    if (this.watching > 0) return;
    this.late = null;
    const at = livePosition();
    this.stands.clear();
    for (const [id, query] of this.followed)
      if (this.cached(query)) this.stands.set(id, { query, at });
    this.followed.clear();
  }
}
