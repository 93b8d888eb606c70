import { useEffect, useMemo, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveStats, useLiveTopics } from '@/lib/live/LiveProvider';
import type { StatsFrame, Topic } from '@/lib/live/client';
import { keyedThrottle } from '@/lib/throttle';

/**
 * The dashboard follows the socket: each `stats` frame (every WS_STATS_SECONDS) is the clock that
 * re-reads the figures, and budget, breaker and dead-letter events refresh the alerts. No timer
 * of its own polls anything.
 */
export function useDashboardLive(topics: Topic[]): void {
  useLiveTopics(topics);
  const qc = useQueryClient();
  const alerts = useMemo(
    () =>
      keyedThrottle<string>(
        1000,
        () => void qc.invalidateQueries({ queryKey: ['dashboard', 'alerts'] }),
      ),
    [qc],
  );
  useEffect(() => () => alerts.cancel(), [alerts]);
  useLiveStats(() => {
    void qc.invalidateQueries({ queryKey: ['dashboard', 'stats'] });
    void qc.invalidateQueries({ queryKey: ['dashboard', 'pipeline'] });
    void qc.invalidateQueries({ queryKey: ['dashboard', 'health'] });
  });
  useLiveEvents(() => alerts.push('x'));
}

/** The latest `stats` frame (re-renders only its caller). */
export function useLatestStatsFrame(): StatsFrame | null {
  const [frame, setFrame] = useState<StatsFrame | null>(null);
  useLiveStats(setFrame);
  return frame;
}
