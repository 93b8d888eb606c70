// The tab's one WebSocket to `GET /ws` (docs/websocket.md): topics are reference-counted across
// pages, every (re)connect resumes with `since` = where the client stands (the last event
// received, not the largest: events arrive in commit order; or the `position` of a `subscribed`
// frame, which follows every event before it), and reconnects back off exponentially.
//
// A topic added on an open socket is subscribed with `since` too (the server then replaces the
// subscription and replays from there): from where the client stands, or from where the
// caller's data was read when that is earlier (`subscribe`'s `from`: the reads' `read_position`,
// the read models' contiguous watermark, which the server orders against `since`; the client
// cannot, a read's position need not be an event it received). So a page that read its list
// and then subscribed gets every event its read did not show; the events the replay carries
// again are dropped by position, so none is delivered twice.

export type Topic = 'budget' | 'dlq' | 'breakers' | 'audit' | 'stats' | 'users';

export interface LiveEvent {
  type: 'event';
  position: number;
  topic?: Topic;
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  event_type: string;
  payload: unknown;
  recorded_at: string;
}

/** Dead letters captured and resolved in one minute (minutes without any are left out). */
export interface DeadLetterMinute {
  minute: string;
  captured: number;
  resolved: number;
}

export interface StatsFrame {
  type: 'stats';
  at: string;
  connections: number;
  events_streamed: number;
  last_position: number;
  catch_ups: number;
  /** Absent when the server could not read them. */
  dead_letters?: { open: number; minutes: DeadLetterMinute[] };
}

export type LiveState = 'idle' | 'connecting' | 'catching_up' | 'live' | 'reconnecting' | 'closed';

export interface LiveStatus {
  state: LiveState;
  /** Events received while catching up after the last reconnect. */
  caughtUp: number;
  /** While catching up: the newest event the catch-up runs to (the server's `position`). */
  catchUpTo: number | null;
  /** Reconnect attempts since the last successful subscribe. */
  attempt: number;
  /** Milliseconds until the next attempt, while reconnecting. */
  retryInMs: number;
  lastPosition: number | null;
}

/** What the client needs of a WebSocket (the browser's, or a fake in unit tests). */
export interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveClientOptions {
  url: string;
  createSocket?: (url: string) => SocketLike;
  backoff?: { initialMs: number; maxMs: number };
  /** 0..1; injectable so tests are deterministic. */
  random?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (id: unknown) => void;
  /** Quiet time after which a catch-up is considered done. */
  catchUpQuietMs?: number;
}

type Listener<T> = (value: T) => void;

/**
 * Where a caller's data stands: the positions its reads answered (`read_position`: every event
 * up to it in commit order is shown), or the client's `position()` when they were read; `null`
 * when that is not known (a read sent before the client stood anywhere, answered without a
 * position); absent when nothing was read before (the read follows the subscription).
 */
export type ReadFrom = number[] | null | undefined;

/** What a caller read before subscribing. */
export interface SubscribeOptions {
  from?: ReadFrom;
  /**
   * Called once the topics are subscribed when the events since `from` cannot be replayed
   * (`from` is null, or names more reads than a `subscribe` may carry): the caller reads its
   * data again.
   */
  onGap?: () => void;
}

const OPEN = 1;
/** Positions remembered in commit order: how far back the client drops repeated events. */
const REMEMBERED = 5000;
/** Most positions one `subscribe` names in `from` (the server's limit). */
const MAX_FROM = 16;

/**
 * The positions the client has stood at, in commit order, and the events it delivered. A
 * replay from an earlier position walks them again, filling in the events of an added topic.
 */
class CommitOrder {
  private order: number[] = [];
  /** Index in `order` of where the client stands (-1: before all). */
  private at = -1;
  /** Delivered events, oldest first (a Set keeps insertion order). */
  private readonly delivered = new Set<number>();

  wasDelivered(p: number): boolean {
    return this.delivered.has(p);
  }

  markDelivered(p: number): void {
    this.delivered.add(p);
    if (this.delivered.size > 2 * REMEMBERED) {
      let drop = this.delivered.size - REMEMBERED;
      for (const old of this.delivered) {
        if (drop-- <= 0) break;
        this.delivered.delete(old);
      }
    }
  }

  /** The stream moved past `p` (an event, or a `subscribed` frame's position). */
  pass(p: number): void {
    if (this.order[this.at] === p) return;
    if (this.order[this.at + 1] === p) this.at += 1;
    else if (this.at === this.order.length - 1) {
      this.order.push(p);
      this.at += 1;
    } else {
      const i = this.order.indexOf(p);
      if (i > this.at)
        this.at = i; // the replay left out the ones between (other topics)
      else if (i < 0) this.order.splice(++this.at, 0, p); // an added topic's event
    }
    if (this.order.length > REMEMBERED * 1.2 && this.at > REMEMBERED * 0.2) {
      const extra = this.order.length - REMEMBERED;
      const cut = Math.min(extra, this.at);
      this.order.splice(0, cut);
      this.at -= cut;
    }
  }

  /** The stream starts again after `p` (a `subscribe` with `since`). */
  rewind(p: number): void {
    const i = this.order.indexOf(p);
    if (i >= 0) this.at = i;
    else {
      this.order = [p];
      this.at = 0;
    }
  }

  reset(): void {
    this.order = [];
    this.at = -1;
    this.delivered.clear();
  }
}

/** A `subscribe` or `unsubscribe` sent and not acknowledged yet. */
interface Sent {
  since: number | null;
  /** The reads' positions it names (the server replays from the earliest of them and `since`). */
  from: number[];
  /** Callers to tell, once acknowledged, that their events since could not be replayed. */
  gaps: (() => void)[];
}

export class LiveClient {
  private socket: SocketLike | null = null;
  private readonly counts = new Map<Topic, number>();
  private lastPosition: number | null = null;
  private readonly log = new CommitOrder();
  /** Frames awaiting their `subscribed`, in order. */
  private sent: Sent[] = [];
  /** The reads' positions to replay from, not sent yet. */
  private pendingFrom: number[] = [];
  private pendingGaps: (() => void)[] = [];
  private attempt = 0;
  private stopped = true;
  private retryTimer: unknown = null;
  private quietTimer: unknown = null;
  private catchUpTo: number | null = null;
  private status: LiveStatus = {
    state: 'idle',
    caughtUp: 0,
    catchUpTo: null,
    attempt: 0,
    retryInMs: 0,
    lastPosition: null,
  };
  private readonly eventListeners = new Set<Listener<LiveEvent>>();
  private readonly statsListeners = new Set<Listener<StatsFrame>>();
  private readonly statusListeners = new Set<Listener<LiveStatus>>();
  private readonly resyncListeners = new Set<Listener<void>>();
  private readonly closeListeners = new Set<Listener<{ code: number; reason: string }>>();
  private readonly opts: Required<LiveClientOptions>;

  constructor(opts: LiveClientOptions) {
    this.opts = {
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
      backoff: { initialMs: 500, maxMs: 15_000 },
      random: Math.random,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
      catchUpQuietMs: 400,
      ...opts,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clear();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.close(1000, 'bye');
    }
    this.setStatus({ state: 'closed' });
  }

  /**
   * Reference-counted topic subscription; returns the release function. The topics are
   * subscribed from where the client stands, or from where the caller's reads stand
   * (`opts.from`) when that is earlier, so the events after the caller's read arrive, each once.
   */
  subscribe(topics: Topic[], opts: SubscribeOptions = {}): () => void {
    const added = topics.filter((t) => {
      const n = this.counts.get(t) ?? 0;
      this.counts.set(t, n + 1);
      return n === 0;
    });
    // Also when the topics were subscribed already (by another page): its events since the
    // caller's read may have come before the caller listened.
    const replay = this.follow(opts.from, opts.onGap);
    if ((added.length || replay) && this.isOpen()) this.sendSubscribe(added);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const removed = topics.filter((t) => {
        const n = (this.counts.get(t) ?? 1) - 1;
        if (n <= 0) this.counts.delete(t);
        else this.counts.set(t, n);
        return n <= 0;
      });
      if (removed.length && this.isOpen()) {
        this.sent.push({ since: null, from: [], gaps: [] });
        this.send({ type: 'unsubscribe', topics: removed });
      }
    };
  }

  topics(): Topic[] {
    return [...this.counts.keys()].sort();
  }

  /**
   * The subscribed topics are to be followed from where these reads stand too (a read answered
   * after its page had subscribed): the server replays from there when that is earlier than
   * where the client stands. `null`: that cannot be known, `onGap` is called once subscribed.
   */
  replayFrom(from: ReadFrom, onGap?: () => void): void {
    if (this.follow(from, onGap) && this.isOpen()) this.sendSubscribe([]);
  }

  /**
   * Queues the reads' positions (or the gap); whether a `subscribe` must go out for them (one
   * whose acknowledgement also tells the callers of a gap).
   */
  private follow(from: ReadFrom, onGap: (() => void) | undefined): boolean {
    if (from === undefined) return false;
    const fresh = from === null ? [] : from.filter((p) => !this.pendingFrom.includes(p));
    if (from === null || this.pendingFrom.length + fresh.length > MAX_FROM) {
      // Not known where it was read, or more reads than a frame may name: the caller reads
      // again once subscribed.
      if (!onGap) return false;
      this.pendingGaps.push(onGap);
      return this.counts.size > 0;
    }
    this.pendingFrom.push(...fresh);
    return fresh.length > 0 && this.counts.size > 0;
  }

  /**
   * Where the client stands (the last event received, or a `subscribed` frame's position),
   * null before its first subscription: what a caller records when it reads, as `from`.
   */
  position(): number | null {
    return this.lastPosition;
  }

  getStatus(): LiveStatus {
    return this.status;
  }

  onEvent(l: Listener<LiveEvent>): () => void {
    return this.add(this.eventListeners, l);
  }
  onStats(l: Listener<StatsFrame>): () => void {
    return this.add(this.statsListeners, l);
  }
  onStatus(l: Listener<LiveStatus>): () => void {
    return this.add(this.statusListeners, l);
  }
  /** Fired when the client could not resume and everything shown must be read again. */
  onResync(l: Listener<void>): () => void {
    return this.add(this.resyncListeners, l);
  }
  onClose(l: Listener<{ code: number; reason: string }>): () => void {
    return this.add(this.closeListeners, l);
  }

  /** The delay before reconnect attempt `n` (0-based): exponential, capped, half of it jittered. */
  backoffMs(n: number): number {
    const { initialMs, maxMs } = this.opts.backoff;
    const d = Math.min(maxMs, initialMs * 2 ** n);
    return Math.round(d / 2 + (this.opts.random() * d) / 2);
  }

  private add<T>(set: Set<Listener<T>>, l: Listener<T>): () => void {
    set.add(l);
    return () => set.delete(l);
  }

  private isOpen(): boolean {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  private send(frame: unknown): void {
    this.socket?.send(JSON.stringify(frame));
  }

  private clear(): void {
    if (this.retryTimer !== null) this.opts.clearTimer(this.retryTimer);
    if (this.quietTimer !== null) this.opts.clearTimer(this.quietTimer);
    this.retryTimer = null;
    this.quietTimer = null;
  }

  private setStatus(patch: Partial<LiveStatus>): void {
    this.status = {
      ...this.status,
      ...patch,
      lastPosition: this.lastPosition,
      catchUpTo: this.catchUpTo,
    };
    for (const l of this.statusListeners) l(this.status);
  }

  private connect(): void {
    const resuming = this.attempt > 0 || this.status.state === 'reconnecting';
    this.setStatus({ state: resuming ? 'reconnecting' : 'connecting', retryInMs: 0 });
    let socket: SocketLike;
    try {
      socket = this.opts.createSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.subscribeAll();
    socket.onmessage = (ev) => this.handle(ev.data);
    socket.onerror = () => {};
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.requeueUnacknowledged();
      this.sent = [];
      for (const l of this.closeListeners) l({ code: ev.code, reason: ev.reason });
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  /** What a lost connection left unacknowledged is asked for again on the next one. */
  private requeueUnacknowledged(): void {
    for (const s of this.sent) {
      this.pendingGaps.push(...s.gaps);
      for (const p of s.from) if (!this.pendingFrom.includes(p)) this.pendingFrom.push(p);
    }
  }

  private subscribeAll(): void {
    // A new connection: what the last one left unacknowledged is asked for again here.
    this.requeueUnacknowledged();
    this.sent = [];
    const topics = this.topics();
    if (!topics.length) {
      this.onSubscribed(false, null);
      return;
    }
    this.sendSubscribe(topics);
  }

  /** Whether a replay (`since` or `from`) is on its way: where the client stands waits for it. */
  private rewinding(): boolean {
    return this.sent.some((s) => s.since !== null || s.from.length > 0);
  }

  /**
   * Subscribes `topics` (a connection's, or those just added). When the client stands
   * somewhere, or reads are to be followed, the frame carries every topic, `since` (where the
   * client stands) and `from` (the reads' positions): it replaces the subscription, and the
   * server replays after the earliest of them in commit order and answers which that was.
   * Until it is acknowledged, where the client stands stays where it was, so a connection lost
   * meanwhile resumes there (and names the reads again).
   */
  private sendSubscribe(added: Topic[]): void {
    const since = this.lastPosition;
    const from = this.pendingFrom;
    const frame: Record<string, unknown> = { type: 'subscribe', topics: added, batch: true };
    if (since !== null || from.length) {
      frame.topics = this.topics();
      if (since !== null) frame.since = since;
      if (from.length) frame.from = from;
    }
    this.sent.push({ since, from, gaps: this.pendingGaps });
    this.pendingFrom = [];
    this.pendingGaps = [];
    this.send(frame);
  }

  private scheduleReconnect(): void {
    this.clear();
    const delay = this.backoffMs(this.attempt);
    this.attempt += 1;
    this.setStatus({ state: 'reconnecting', attempt: this.attempt, retryInMs: delay, caughtUp: 0 });
    this.retryTimer = this.opts.setTimer(() => {
      this.retryTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private handle(data: unknown): void {
    let frame: { type?: string; [k: string]: unknown };
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    switch (frame.type) {
      case 'subscribed': {
        const acked = this.sent.shift();
        // A replay: the server says where it starts (the earliest of `since` and `from`); the
        // client stands there until the replayed events pass again.
        if (acked && typeof frame.since === 'number' && (acked.since !== null || acked.from.length))
          this.standAt(frame.since);
        this.onSubscribed(
          frame.since !== undefined && frame.since !== null,
          typeof frame.position === 'number' ? frame.position : null,
        );
        for (const gap of acked?.gaps ?? []) gap();
        break;
      }
      case 'event':
        this.deliver([frame as unknown as LiveEvent]);
        break;
      case 'events':
        this.deliver((frame.events as LiveEvent[]) ?? []);
        break;
      case 'stats':
        for (const l of this.statsListeners) l(frame as unknown as StatsFrame);
        break;
      case 'error':
        if (frame.field === 'since' || String(frame.field).startsWith('from')) {
          // The position is unknown to the server (e.g. another database), or too far behind
          // for it to replay (docs/websocket.md): start afresh (everything is read again, so
          // the callers waiting for a replay need nothing more). The server answered: the
          // subscription that follows is no reconnect to read everything again for.
          this.sent.shift();
          this.attempt = 0;
          this.lastPosition = null;
          this.log.reset();
          this.pendingFrom = [];
          this.pendingGaps = [];
          if (this.isOpen()) this.sendSubscribe(this.topics());
          for (const l of this.resyncListeners) l();
        }
        break;
    }
  }

  /** A replay starts after `p`: where the client stands (while no other replay is on its way). */
  private standAt(p: number): void {
    if (this.rewinding()) return;
    if (p !== this.lastPosition) this.log.rewind(p);
    this.lastPosition = p;
  }

  /**
   * `position`: where the subscription stands. Without `since`, every event after it follows this
   * frame, so it is where a reconnect resumes even when no event has arrived yet. After `since`,
   * the newest event the catch-up runs to: receiving it ends the catch-up (a filtered-out one
   * never arrives, so a quiet spell ends it too).
   */
  private onSubscribed(resumed: boolean, position: number | null): void {
    const reconnected = this.attempt > 0;
    this.attempt = 0;
    if (!resumed) {
      // (While a `since` is on its way, where the client stands waits for its replay.)
      if (position !== null && !this.rewinding()) {
        this.lastPosition = position;
        this.log.pass(position);
      }
      // A reconnect without `since`: the client stood nowhere (the log was empty), so what
      // happened while it was away is read again.
      if (reconnected) for (const l of this.resyncListeners) l();
      if (this.status.state !== 'catching_up')
        this.setStatus({ state: 'live', attempt: 0, retryInMs: 0 });
      else this.setStatus({});
      return;
    }
    if (this.status.state === 'live' || this.status.state === 'catching_up') return;
    if (position !== null && position === this.lastPosition) {
      // Nothing happened while away.
      this.setStatus({ state: 'live', caughtUp: 0, attempt: 0, retryInMs: 0 });
      return;
    }
    // `null`: a server that does not say where the catch-up ends; a quiet spell does.
    this.catchUpTo = position;
    this.setStatus({ state: 'catching_up', caughtUp: 0, attempt: 0, retryInMs: 0 });
    this.armQuiet();
  }

  private caughtUpNow(): void {
    if (this.quietTimer !== null) this.opts.clearTimer(this.quietTimer);
    this.quietTimer = null;
    this.catchUpTo = null;
    this.setStatus({ state: 'live' });
  }

  private armQuiet(): void {
    if (this.quietTimer !== null) this.opts.clearTimer(this.quietTimer);
    this.quietTimer = this.opts.setTimer(() => {
      this.quietTimer = null;
      if (this.status.state === 'catching_up') this.caughtUpNow();
    }, this.opts.catchUpQuietMs);
  }

  /**
   * Passes events to the listeners, each once: a replay from an earlier position (an added
   * topic's `since`) carries again the events already delivered, and those are dropped. While
   * a `since` is on its way, the events of the old subscription are delivered but where the
   * client stands waits for the replay, which carries them again.
   */
  private deliver(events: LiveEvent[]): void {
    const rewinding = this.rewinding();
    let fresh = 0;
    for (const e of events) {
      if (typeof e.position !== 'number') continue;
      if (!rewinding) {
        this.lastPosition = e.position;
        this.log.pass(e.position);
      }
      if (this.log.wasDelivered(e.position)) continue;
      this.log.markDelivered(e.position);
      fresh += 1;
      for (const l of this.eventListeners) l(e);
    }
    if (this.status.state === 'catching_up') {
      this.setStatus({ caughtUp: this.status.caughtUp + fresh });
      if (this.catchUpTo !== null && events.some((e) => e.position === this.catchUpTo))
        this.caughtUpNow();
      else this.armQuiet();
    } else if (events.length) {
      this.status = { ...this.status, lastPosition: this.lastPosition };
    }
  }
}
