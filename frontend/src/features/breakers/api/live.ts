import { useEffect, useMemo } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveStats, useLiveTopics } from '@/lib/live/LiveProvider';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import { keyedThrottle } from '@/lib/throttle';
import { breakerKeys } from './keys';

/**
 * Breaker events from the socket re-read the list and the breakers they name (at most every
 * 200 ms). Both reads come from the event log itself, so they see the event at once. The
 * failure rates move with every reported call, which is not an event: the list is read again
 * on each `stats` frame (every 5 s by default) for those who may subscribe to it.
 */
export function useBreakersLive() {
  const stats = useCan(perm.readSystem);
  useLiveTopics(stats ? ['breakers', 'stats'] : ['breakers']);
  const qc = useQueryClient();
  useLiveStats(() => void qc.invalidateQueries({ queryKey: breakerKeys.list, exact: true }));
  const throttle = useMemo(
    () =>
      keyedThrottle<string>(200, (names) => {
        void qc.invalidateQueries({ queryKey: breakerKeys.list });
        for (const name of names) void qc.invalidateQueries({ queryKey: breakerKeys.one(name) });
      }),
    [qc],
  );
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents((e) => {
    if (e.aggregate_type === 'CircuitBreaker') throttle.push(e.aggregate_id);
  });
}
