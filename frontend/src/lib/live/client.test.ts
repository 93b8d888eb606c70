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
