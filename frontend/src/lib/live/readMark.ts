import { livePosition } from './LiveProvider';

/**
 * Where a feature's reads stand against the live socket, for `useLiveTopics`' `reads`: the
 * client's position when the earliest read not covered by the feature's subscription was
 * sent. A read sent before the page subscribes (the entry script's first read, or data kept in
 * the cache from an earlier visit) is then followed by the events committed since, replayed
 * (client.ts); one sent while subscribed needs nothing. `null`: read before the client stood
 * anywhere, so the page reads again once subscribed.
 */
export class ReadMark {
  private from: number | null | undefined = undefined;
  private watching = 0;

  /** Call as a read is sent. */
  reading(): void {
    if (this.watching === 0 && this.from === undefined) this.from = livePosition();
  }

  /** The subscription starts: where the reads it must follow stand (undefined: none). */
  watch(): number | null | undefined {
    this.watching += 1;
    const from = this.from;
    this.from = undefined;
    return from;
  }

  /** The subscription ends: what was read stays current up to where the client stands now. */
  unwatch(): void {
    this.watching = Math.max(0, this.watching - 1);
    if (this.watching === 0) this.from = livePosition();
  }
}
