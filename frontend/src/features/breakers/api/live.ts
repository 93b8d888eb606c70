import { useEffect, useMemo } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { keyedThrottle } from '@/lib/throttle';
import { breakerKeys } from './keys';

/**
 * Breaker events from the socket re-read the list and the breakers they name (at most every
 * 200 ms). Both reads come from the event log itself, so they see the event at once.
 */
export function useBreakersLive() {
  useLiveTopics(['breakers']);
  const qc = useQueryClient();
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
