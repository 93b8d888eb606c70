import {
  createContext,
  useContext,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { env } from '@/config/env';
import {
  LiveClient,
  type LiveEvent,
  type LiveStatus,
  type ReadFrom,
  type StatsFrame,
  type Topic,
} from './client';
import type { ReadMark } from './readMark';

const LiveContext = createContext<LiveClient | null>(null);

let tabClient: LiveClient | null = null;

/**
 * Where the tab's live client stands (`LiveClient.position`), for a read to record before it
 * is sent; null before its first subscription, or before it exists (e.g. a read started by
 * the entry script).
 */
export function livePosition(): number | null {
  return tabClient?.position() ?? null;
}

/** One LiveClient per tab, started while a session exists. */
export function LiveProvider({ enabled, children }: { enabled: boolean; children: ReactNode }) {
  const [client] = useState(() => new LiveClient({ url: env.wsUrl(), backoff: env.wsBackoff }));
  const queryClient = useQueryClient();
  useEffect(() => {
    tabClient = client;
    return () => {
      if (tabClient === client) tabClient = null;
    };
  }, [client]);
  useEffect(() => {
    if (!enabled) return;
    client.start();
    // Could not resume: everything on screen is read again.
    const off = client.onResync(() => void queryClient.invalidateQueries());
    return () => {
      off();
      client.stop();
    };
  }, [client, enabled, queryClient]);
  return <LiveContext.Provider value={client}>{children}</LiveContext.Provider>;
}

export function useLiveClient(): LiveClient {
  const c = useContext(LiveContext);
  if (!c) throw new Error('useLiveClient outside LiveProvider');
  return c;
}

export interface LiveTopicsOptions {
  /**
   * The reads of what the caller shows (its `ReadMark`): the topics are subscribed from where
   * the earliest of them not yet covered by a subscription stands, so every event they do not
   * show arrives (client.ts).
   */
  reads?: ReadMark;
  /** Instead of `reads`: where what the caller shows was read (`null`: cannot be replayed). */
  from?: ReadFrom;
  /** Called once subscribed when the events since the reads cannot be replayed: read again. */
  onGap?: () => void;
}

/** Subscribes the tab's socket to these topics while the calling component is mounted. */
export function useLiveTopics(topics: Topic[], opts: LiveTopicsOptions = {}): void {
  const client = useLiveClient();
  const queryClient = useQueryClient();
  const key = [...topics].sort().join(',');
  const ref = useRef(opts);
  useEffect(() => {
    ref.current = opts;
  });
  useEffect(() => {
    if (!key) return;
    const { reads, from, onGap } = ref.current;
    const gap = onGap && (() => ref.current.onGap?.());
    const release = client.subscribe(key.split(',') as Topic[], {
      from: reads
        ? reads.watch(
            (late) => client.replayFrom(late, gap),
            // A read whose data has left the cache is shown nowhere: nothing to follow.
            (query) => queryClient.getQueryData(query) !== undefined,
          )
        : from,
      onGap: gap,
    });
    return () => {
      release();
      reads?.unwatch();
    };
  }, [client, queryClient, key]);
}

/** Keeps a listener registered with the client, always calling the latest handler. */
function useListener<T>(
  register: (client: LiveClient, l: (v: T) => void) => () => void,
  handler: (v: T) => void,
): void {
  const client = useLiveClient();
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => register(client, (v) => ref.current(v)), [client]);
}

/** Calls `handler` for each event received. */
export const useLiveEvents = (handler: (e: LiveEvent) => void) =>
  useListener<LiveEvent>((c, l) => c.onEvent(l), handler);

/** Calls `handler` for each `stats` frame. */
export const useLiveStats = (handler: (s: StatsFrame) => void) =>
  useListener<StatsFrame>((c, l) => c.onStats(l), handler);

export function useLiveStatus(): LiveStatus {
  const client = useLiveClient();
  return useSyncExternalStore(
    (cb) => client.onStatus(cb),
    () => client.getStatus(),
  );
}
