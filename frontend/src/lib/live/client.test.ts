import { describe, expect, it } from 'vitest';
import { LiveClient, type SocketLike } from './client';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(f: unknown) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number; id: number }[] = [];
  let nextId = 1;
  const client = new LiveClient({
    url: 'ws://test/ws',
    createSocket: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    backoff: { initialMs: 100, maxMs: 1000 },
    random: () => 1,
    setTimer: (fn, ms) => {
      const id = nextId++;
      timers.push({ fn, ms, id });
      return id;
    },
    clearTimer: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
  });
  const runTimers = () => {
    const due = timers.splice(0);
    due.forEach((t) => t.fn());
    return due.map((t) => t.ms);
  };
  return { client, sockets, timers, runTimers, last: () => sockets[sockets.length - 1]! };
}

const ev = (position: number) => ({
  type: 'event',
  position,
  topic: 'budget',
  aggregate_type: 'Budget',
  aggregate_id: 't/p',
  sequence: position,
  event_type: 'TokensReserved',
  payload: {},
  recorded_at: '2026-12-02T00:00:00Z',
});

describe('LiveClient', () => {
  it('subscribes to the topics pages asked for, without since on the first connect', () => {
    const h = harness();
    h.client.subscribe(['budget']);
    h.client.subscribe(['stats', 'budget']);
    h.client.start();
    h.last().open();
    expect(h.last().sent).toEqual([
      { type: 'subscribe', topics: ['budget', 'stats'], batch: true },
    ]);
  });

  it('resumes with since = the position of the last event received, not the largest', () => {
    const h = harness();
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'] });
    // Commit order: a later position can arrive before an earlier one.
    h.last().frame({ type: 'events', events: [ev(10), ev(12), ev(11)] });
    h.last().drop();
    expect(h.client.getStatus().state).toBe('reconnecting');
    h.runTimers();
    h.last().open();
    expect(h.last().sent).toEqual([
      { type: 'subscribe', topics: ['budget'], batch: true, since: 11 },
    ]);
  });

  it('delivers every event once across a reconnect and counts the catch-up', () => {
    const h = harness();
    const seen: number[] = [];
    h.client.onEvent((e) => seen.push(e.position));
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'] });
    h.last().frame(ev(1));
    h.last().drop();
    h.runTimers();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'], since: 1 });
    expect(h.client.getStatus().state).toBe('catching_up');
    h.last().frame({ type: 'events', events: [ev(2), ev(3)] });
    h.last().frame(ev(4));
    expect(h.client.getStatus().caughtUp).toBe(3);
    h.runTimers(); // the quiet period ends the catch-up
    expect(h.client.getStatus()).toMatchObject({ state: 'live', caughtUp: 3, lastPosition: 4 });
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('backs off exponentially up to the cap and resets after a successful subscribe', () => {
    const h = harness();
    h.client.subscribe(['stats']);
    h.client.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      h.last().drop();
      delays.push(...h.runTimers());
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['stats'] });
    h.last().drop();
    expect(h.runTimers()).toEqual([100]);
  });

  it('adds and removes topics on the open socket as pages come and go', () => {
    const h = harness();
    h.client.start();
    h.last().open();
    const release = h.client.subscribe(['budget']);
    const release2 = h.client.subscribe(['budget']);
    release();
    expect(h.last().sent).toEqual([{ type: 'subscribe', topics: ['budget'], batch: true }]);
    release2();
    expect(h.last().sent[1]).toEqual({ type: 'unsubscribe', topics: ['budget'] });
  });

  it('starts afresh when the server does not know the position', () => {
    const h = harness();
    let resyncs = 0;
    h.client.onResync(() => resyncs++);
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame(ev(5));
    h.last().drop();
    h.runTimers();
    h.last().open();
    h.last().frame({ type: 'error', field: 'since', message: 'unknown position' });
    expect(h.last().sent[1]).toEqual({ type: 'subscribe', topics: ['budget'], batch: true });
    expect(resyncs).toBe(1);
  });

  it('asks pages to read again after a reconnect that had nothing to resume from', () => {
    const h = harness();
    let resyncs = 0;
    h.client.onResync(() => resyncs++);
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'] });
    h.last().drop();
    h.runTimers();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'] });
    expect(resyncs).toBe(1);
  });

  it('resumes from the position the server acknowledged, even when no event arrived', () => {
    const h = harness();
    let resyncs = 0;
    h.client.onResync(() => resyncs++);
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'], since: null, position: 40 });
    expect(h.client.getStatus()).toMatchObject({ state: 'live', lastPosition: 40 });
    h.last().drop();
    h.runTimers();
    h.last().open();
    expect(h.last().sent).toEqual([
      { type: 'subscribe', topics: ['budget'], batch: true, since: 40 },
    ]);
    // Nothing happened meanwhile: live at once, nothing to read again.
    h.last().frame({ type: 'subscribed', topics: ['budget'], since: 40, position: 40 });
    expect(h.client.getStatus()).toMatchObject({ state: 'live', caughtUp: 0 });
    expect(resyncs).toBe(0);
  });

  it('ends the catch-up when the event at the acknowledged position arrives', () => {
    const h = harness();
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'], position: 5 });
    h.last().drop();
    h.runTimers();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'], since: 5, position: 9 });
    expect(h.client.getStatus()).toMatchObject({ state: 'catching_up', catchUpTo: 9 });
    h.last().frame({ type: 'events', events: [ev(6), ev(8)] });
    expect(h.client.getStatus().state).toBe('catching_up');
    // Commit order: 9 before 7 (no quiet spell needed).
    h.last().frame({ type: 'events', events: [ev(9), ev(7)] });
    expect(h.client.getStatus()).toMatchObject({
      state: 'live',
      caughtUp: 4,
      catchUpTo: null,
      lastPosition: 7,
    });
  });

  it('reads everything again after a reconnect from an empty log', () => {
    const h = harness();
    let resyncs = 0;
    h.client.onResync(() => resyncs++);
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    h.last().frame({ type: 'subscribed', topics: ['budget'], position: null });
    h.last().drop();
    h.runTimers();
    h.last().open();
    expect(h.last().sent).toEqual([{ type: 'subscribe', topics: ['budget'], batch: true }]);
    h.last().frame({ type: 'subscribed', topics: ['budget'], position: 3 });
    expect(resyncs).toBe(1);
    expect(h.client.getStatus().lastPosition).toBe(3);
  });

  it('stays closed after stop', () => {
    const h = harness();
    h.client.start();
    h.last().open();
    h.client.stop();
    expect(h.timers).toHaveLength(0);
    expect(h.client.getStatus().state).toBe('closed');
  });
});

/**
 * The server's side of one connection, as gateway/src/live/connection.rs behaves: a log in
 * commit order, `subscribe` without `since` adds topics from the log's end, with `since` (or
 * `from`) replaces them and replays what follows the earliest of them in commit order, and says
 * which that was. Client frames wait in `inbox` until `serve()`, so a test can commit events
 * while a frame is on its way. `read` stands for a read's position that is not an event the
 * client received (one of another topic): positions the log has but the client never saw.
 * A replay from more than `maxReplay` events behind the newest is refused, naming the field.
 */
function simServer(h: ReturnType<typeof harness>, maxReplay = Infinity) {
  const log: { position: number; topic: string }[] = [];
  let topics = new Set<string>();
  let served = 0;
  const socket = () => h.last();
  const send = (events: { position: number; topic: string }[]) => {
    const out = events.filter((e) => topics.has(e.topic) || topics.has('audit'));
    if (out.length) socket().frame({ type: 'events', events: out.map((e) => evOf(e)) });
  };
  return {
    log,
    /** A commit: the connection passes it at once (sent when it matches). */
    commit(position: number, topic: string) {
      log.push({ position, topic });
      if (topics.size) send([log[log.length - 1]!]);
    },
    /** Handles the client frames not handled yet, in order. */
    serve() {
      const frames = socket().sent.slice(served);
      served = socket().sent.length;
      for (const f of frames) {
        if (f.type === 'unsubscribe') {
          for (const t of f.topics as string[]) topics.delete(t);
          socket().frame({ type: 'subscribed', topics: [...topics], since: null, position: null });
        } else if (f.since === undefined && f.from === undefined) {
          for (const t of f.topics as string[]) topics.add(t);
          const at = log.at(-1)?.position ?? null;
          socket().frame({ type: 'subscribed', topics: [...topics], since: null, position: at });
        } else {
          topics = new Set(f.topics as string[]);
          const starts = [f.since, ...((f.from as number[] | undefined) ?? [])].filter(
            (p): p is number => typeof p === 'number',
          );
          const at = (p: number) => (p === 0 ? -1 : log.findIndex((e) => e.position === p));
          const since = starts.reduce((a, b) => (at(b) < at(a) ? b : a));
          if (log.length - 1 - at(since) > maxReplay) {
            const field =
              since === f.since ? 'since' : `from[${(f.from as number[]).indexOf(since)}]`;
            socket().frame({ type: 'error', field, message: 'too far behind' });
            continue;
          }
          socket().frame({
            type: 'subscribed',
            topics: [...topics],
            since,
            position: log.at(-1)?.position ?? null,
          });
          send(log.slice(at(since) + 1));
        }
      }
    },
    /** The connection is gone: nothing more is sent on it; a new one starts empty. */
    dropped() {
      h.last().drop();
      topics = new Set();
      served = 0;
    },
  };
}

const evOf = (e: { position: number; topic: string }) => ({
  ...ev(e.position),
  topic: e.topic,
  aggregate_type: e.topic === 'dlq' ? 'DlqEntry' : 'Budget',
});

/** A client subscribed to `budget` on an open socket, recording what each listener receives. */
function withBudget() {
  const h = harness();
  const server = simServer(h);
  const seen: number[] = [];
  const dlq: number[] = [];
  h.client.onEvent((e) => {
    seen.push(e.position);
    if (e.aggregate_type === 'DlqEntry') dlq.push(e.position);
  });
  h.client.subscribe(['budget']);
  h.client.start();
  h.last().open();
  server.serve();
  return { h, server, seen, dlq };
}

describe('LiveClient: a topic added after a read', () => {
  it('gets the events committed between the read and the subscription, each once', () => {
    const { h, server, seen, dlq } = withBudget();
    server.commit(1, 'budget');
    const readAt = h.client.position(); // the page reads its list here
    expect(readAt).toBe(1);
    server.commit(2, 'dlq'); // captured between the read and the subscription
    server.commit(3, 'budget');
    h.client.subscribe(['dlq'], { from: [readAt!] });
    expect(h.last().sent.at(-1)).toEqual({
      type: 'subscribe',
      topics: ['budget', 'dlq'],
      batch: true,
      since: 3,
      from: [1],
    });
    server.serve(); // replays 2 and 3; 3 was delivered already
    server.commit(4, 'dlq');
    expect(dlq).toEqual([2, 4]);
    expect(seen).toEqual([1, 3, 2, 4]);
    expect(h.client.position()).toBe(4);
  });

  it('without a read before, is subscribed from where the client stands', () => {
    const { h, server, dlq } = withBudget();
    server.commit(1, 'budget');
    server.commit(2, 'dlq');
    h.client.subscribe(['dlq']);
    expect(h.last().sent.at(-1)).toMatchObject({ topics: ['budget', 'dlq'], since: 1 });
    server.serve();
    // Committed after where the client stood: replayed.
    expect(dlq).toEqual([2]);
  });

  it('drops the events of the old subscription that the replay carries again', () => {
    const { h, server, seen, dlq } = withBudget();
    server.commit(1, 'budget');
    h.client.subscribe(['dlq'], { from: [1] });
    // On its way: the server still sends the old subscription's events.
    server.commit(2, 'budget');
    server.commit(3, 'dlq');
    server.commit(4, 'budget');
    expect(seen).toEqual([1, 2, 4]);
    server.serve();
    expect(seen).toEqual([1, 2, 4, 3]);
    expect(dlq).toEqual([3]);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('lets the server order the read against where it stands, in commit order', () => {
    const { h, server, dlq } = withBudget();
    server.commit(10, 'budget');
    server.commit(12, 'dlq'); // the read stands here: an event this client never received
    server.commit(11, 'budget'); // committed after 12
    server.commit(13, 'dlq');
    expect(h.client.position()).toBe(11);
    h.client.subscribe(['dlq'], { from: [12] });
    expect(h.last().sent.at(-1)).toMatchObject({ since: 11, from: [12] });
    server.serve();
    // 12 is before 11 in commit order: the replay starts after 12, so 13 arrives and 12 does not.
    expect(dlq).toEqual([13]);
    expect(h.client.position()).toBe(13);
  });

  it('names the reads of several topics added before the socket answered', () => {
    const { h, server, dlq } = withBudget();
    server.commit(1, 'budget');
    server.commit(2, 'dlq');
    server.commit(3, 'budget');
    server.commit(4, 'dlq');
    server.commit(5, 'budget');
    h.client.subscribe(['dlq'], { from: [3] });
    h.client.subscribe(['breakers'], { from: [1] });
    expect(h.last().sent.slice(-2)).toMatchObject([
      { since: 5, from: [3] },
      { since: 5, from: [1] },
    ]);
    server.serve();
    expect(dlq).toEqual([4, 2]);
    expect(h.client.position()).toBe(5);
  });

  it('follows a read that stood before the socket did, from the read', () => {
    const h = harness();
    const server = simServer(h);
    const dlq: number[] = [];
    h.client.onEvent((e) => dlq.push(e.position));
    server.commit(1, 'dlq'); // read: the list shows it
    server.commit(2, 'dlq'); // committed after the read, before the socket was up
    h.client.start();
    // The entry script's read answered 1 before the client stood anywhere.
    h.client.subscribe(['dlq'], { from: [1] });
    h.last().open();
    expect(h.last().sent).toEqual([{ type: 'subscribe', topics: ['dlq'], batch: true, from: [1] }]);
    server.serve();
    expect(dlq).toEqual([2]);
    expect(h.client.position()).toBe(2);
  });

  it('replays from a read answered after its topic was subscribed', () => {
    const { h, server, dlq } = withBudget();
    server.commit(1, 'budget');
    h.client.subscribe(['dlq']); // the page subscribed; its read is on its way
    server.serve();
    server.commit(2, 'dlq'); // delivered
    server.commit(3, 'dlq'); // the read stands at 2 ... 3 is delivered too
    h.client.replayFrom([2]);
    expect(h.last().sent.at(-1)).toMatchObject({ topics: ['budget', 'dlq'], since: 3, from: [2] });
    server.serve();
    expect(dlq).toEqual([2, 3]); // 3 again is dropped: delivered once
    h.client.replayFrom([1]);
    server.serve(); // 2 and 3 again: dropped
    expect(dlq).toEqual([2, 3]);
    server.commit(4, 'dlq');
    expect(dlq).toEqual([2, 3, 4]);
  });

  it('asks the caller to read again when it cannot say where its read stood', () => {
    const h = harness();
    const server = simServer(h);
    let gaps = 0;
    h.client.start();
    // The list was read before the socket was up (the page's first read, started early).
    h.client.subscribe(['dlq'], { from: null, onGap: () => gaps++ });
    h.last().open();
    expect(h.last().sent).toEqual([{ type: 'subscribe', topics: ['dlq'], batch: true }]);
    expect(gaps).toBe(0);
    server.serve();
    expect(gaps).toBe(1); // after the subscription stands: the read again misses nothing
    server.commit(7, 'dlq');
    expect(gaps).toBe(1);
  });

  it('asks the caller to read again when its reads are more than a frame may name', () => {
    const { h, server } = withBudget();
    let gaps = 0;
    server.commit(1, 'budget');
    const many = Array.from({ length: 17 }, (_, i) => i + 1);
    h.client.subscribe(['dlq'], { from: many, onGap: () => gaps++ });
    expect(h.last().sent.at(-1)).toMatchObject({ since: 1 });
    expect(h.last().sent.at(-1)).not.toHaveProperty('from');
    server.serve();
    expect(gaps).toBe(1);
  });

  it('reads everything again when the server does not know a read’s position', () => {
    const { h, server } = withBudget();
    let resyncs = 0;
    h.client.onResync(() => resyncs++);
    server.commit(1, 'budget');
    h.client.subscribe(['dlq'], { from: [999] });
    h.last().frame({ type: 'error', field: 'from[0]', message: 'no event at position 999' });
    expect(resyncs).toBe(1);
    expect(h.last().sent.at(-1)).toEqual({
      type: 'subscribe',
      topics: ['budget', 'dlq'],
      batch: true,
    });
  });
});

describe('LiveClient: a replay the server refuses as too far behind', () => {
  it('reads everything again once and follows from now, without asking again', () => {
    const h = harness();
    const server = simServer(h, 5);
    const seen: number[] = [];
    let resyncs = 0;
    h.client.onEvent((e) => seen.push(e.position));
    h.client.onResync(() => resyncs++);
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    server.serve();
    server.commit(1, 'budget');
    server.dropped();
    for (let p = 2; p <= 20; p++) server.commit(p, 'budget'); // hours away
    h.runTimers();
    h.last().open();
    expect(h.last().sent).toEqual([
      { type: 'subscribe', topics: ['budget'], batch: true, since: 1 },
    ]);
    server.serve(); // refused: `since` is 19 events behind
    expect(resyncs).toBe(1);
    expect(h.last().sent.at(-1)).toEqual({ type: 'subscribe', topics: ['budget'], batch: true });
    server.serve();
    server.commit(21, 'budget');
    // A page's read after the resync is sent while subscribed: it names no position.
    h.client.subscribe(['dlq'], { from: undefined });
    server.serve();
    server.commit(22, 'dlq');
    expect(resyncs).toBe(1);
    expect(h.last().sent.filter((f) => f.since !== undefined || f.from !== undefined)).toEqual([
      { type: 'subscribe', topics: ['budget'], batch: true, since: 1 },
      { type: 'subscribe', topics: ['budget', 'dlq'], batch: true, since: 21 },
    ]);
    expect(seen).toEqual([1, 21, 22]);
    expect(h.client.getStatus().state).toBe('live');
  });

  it('a page subscribing from a read far behind reads again, and is not refused again', () => {
    const h = harness();
    const server = simServer(h, 5);
    let resyncs = 0;
    h.client.onResync(() => resyncs++);
    h.client.subscribe(['budget']);
    h.client.start();
    h.last().open();
    server.serve();
    server.commit(1, 'dlq'); // the page's list was read here, hours ago
    for (let p = 2; p <= 10; p++) server.commit(p, 'budget');
    h.client.subscribe(['dlq'], { from: [1] });
    server.serve();
    expect(resyncs).toBe(1);
    expect(h.last().sent.at(-1)).toEqual({
      type: 'subscribe',
      topics: ['budget', 'dlq'],
      batch: true,
    });
    server.serve();
    server.commit(11, 'dlq');
    expect(resyncs).toBe(1);
    expect(h.last().sent.filter((f) => f.from !== undefined)).toHaveLength(1);
  });
});

describe('LiveClient: resuming after a topic was added', () => {
  it('a connection lost before the replay names the read again on the next one', () => {
    const { h, server, dlq } = withBudget();
    server.commit(1, 'budget');
    h.client.subscribe(['dlq'], { from: [1] });
    server.commit(2, 'budget'); // the old subscription's: delivered, but not where it stands
    server.commit(3, 'dlq'); // not sent: the subscription has no dlq yet
    server.dropped();
    h.runTimers();
    h.last().open();
    expect(h.last().sent).toEqual([
      { type: 'subscribe', topics: ['budget', 'dlq'], batch: true, since: 1, from: [1] },
    ]);
    server.serve();
    expect(dlq).toEqual([3]);
  });

  it('resumes from the last event received after the replay, and delivers every event once', () => {
    const { h, server, seen } = withBudget();
    server.commit(1, 'budget');
    server.commit(2, 'dlq');
    server.commit(3, 'budget');
    h.client.subscribe(['dlq'], { from: [1] });
    server.serve();
    server.commit(4, 'dlq');
    server.dropped();
    server.commit(5, 'budget'); // while away
    server.commit(6, 'dlq');
    h.runTimers();
    h.last().open();
    expect(h.last().sent).toEqual([
      { type: 'subscribe', topics: ['budget', 'dlq'], batch: true, since: 4 },
    ]);
    server.serve(); // the catch-up ends with the event at the acknowledged position (6)
    expect(h.client.getStatus()).toMatchObject({ state: 'live', caughtUp: 2, lastPosition: 6 });
    expect(seen).toEqual([1, 3, 2, 4, 5, 6]);
  });
});
