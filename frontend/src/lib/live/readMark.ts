import { livePosition } from './LiveProvider';
import type { ReadFrom } from './client';

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
 * A read answered without a position (a server that does not know its watermark yet) stands
 * where the client stood when it was sent, as before the watermark; `null` when the client
 * stood nowhere, and the page reads again once subscribed.
 */
export class ReadMark {
  private from: number[] = [];
  private gap = false;
  private watching = 0;
  private late: ((from: ReadFrom) => void) | null = null;

  /** Sends a read (`send`) and records where its answer stands. */
  read<T extends { read_position?: number | null }>(send: () => Promise<T>): Promise<T> {
    const done = this.reading();
    return send().then((answer) => {
      done(answer.read_position);
      return answer;
    });
  }

  /** Call as a read is sent; call what it returns with the answer's `read_position`. */
  reading(): (readPosition: number | null | undefined) => void {
    if (this.watching > 0) return () => {};
    const sentAt = livePosition();
    return (readPosition) => {
      const at = typeof readPosition === 'number' ? readPosition : sentAt;
      if (this.watching > 0) this.late?.(at === null ? null : [at]);
      else this.stand(at);
    };
  }

  /**
   * The subscription starts: where the reads it must follow stand (undefined: none), and who
   * to tell about a read answered from now on that was sent before.
   */
  watch(late: (from: ReadFrom) => void): ReadFrom {
    this.watching += 1;
    this.late = late;
    const from = this.gap ? null : this.from.length ? this.from : undefined;
    this.from = [];
    this.gap = false;
    return from;
  }

  /** The subscription ends: what was read stays current up to where the client stands now. */
  unwatch(): void {
    this.watching = Math.max(0, this.watching - 1);
    if (this.watching > 0) return;
    this.late = null;
    this.from = [];
    this.gap = false;
    this.stand(livePosition());
  }

  private stand(at: number | null): void {
    if (at === null) this.gap = true;
    else if (!this.from.includes(at)) this.from.push(at);
  }
}
