// The tab's one WebSocket to `GET /ws` (docs/websocket.md): topics are reference-counted across
// pages, every (re)connect resumes with `since` = where the client stands (the last event
// received, not the largest: events arrive in commit order; or the `position` of a `subscribed`
// frame, which follows every event before it), and reconnects back off exponentially.

export type Topic = 'budget' | 'dlq' | 'breakers' | 'audit' | 'stats';

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

const OPEN = 1;

export class LiveClient {
  private socket: SocketLike | null = null;
  private readonly counts = new Map<Topic, number>();
  private lastPosition: number | null = null;
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

  /** Reference-counted topic subscription; returns the release function. */
  subscribe(topics: Topic[]): () => void {
    const added = topics.filter((t) => {
      const n = this.counts.get(t) ?? 0;
      this.counts.set(t, n + 1);
      return n === 0;
    });
    if (added.length && this.isOpen()) this.send({ type: 'subscribe', topics: added, batch: true });
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
      if (removed.length && this.isOpen()) this.send({ type: 'unsubscribe', topics: removed });
    };
  }

  topics(): Topic[] {
    return [...this.counts.keys()].sort();
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
      for (const l of this.closeListeners) l({ code: ev.code, reason: ev.reason });
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private subscribeAll(): void {
    const topics = this.topics();
    if (!topics.length) {
      this.onSubscribed(false, null);
      return;
    }
    const frame: Record<string, unknown> = { type: 'subscribe', topics, batch: true };
    if (this.lastPosition !== null) frame.since = this.lastPosition;
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
      case 'subscribed':
        this.onSubscribed(
          frame.since !== undefined && frame.since !== null,
          typeof frame.position === 'number' ? frame.position : null,
        );
        break;
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
        if (frame.field === 'since') {
          // The position is unknown to the server (e.g. another database): start afresh.
          this.lastPosition = null;
          this.subscribeAll();
          for (const l of this.resyncListeners) l();
        }
        break;
    }
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
      if (position !== null) this.lastPosition = position;
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

  private deliver(events: LiveEvent[]): void {
    for (const e of events) {
      if (typeof e.position !== 'number') continue;
      this.lastPosition = e.position;
      for (const l of this.eventListeners) l(e);
    }
    if (this.status.state === 'catching_up') {
      this.setStatus({ caughtUp: this.status.caughtUp + events.length });
      if (this.catchUpTo !== null && events.some((e) => e.position === this.catchUpTo))
        this.caughtUpNow();
      else this.armQuiet();
    } else if (events.length) {
      this.status = { ...this.status, lastPosition: this.lastPosition };
    }
  }
}
