import { useEffect, useMemo } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { keyedThrottle } from '@/lib/throttle';
import { dlqKeys, rememberDlqPosition } from './keys';

/**
 * Keeps the dead-letter pages current from the socket's `dlq` topic: an entry captured,
 * recaptured or resolved re-reads what is on screen (at most every 250 ms), and those reads
 * wait for the event's position.
 */
export function useDlqLive() {
  useLiveTopics(['dlq']);
  const qc = useQueryClient();
  const throttle = useMemo(
    () => keyedThrottle<string>(250, () => void qc.invalidateQueries({ queryKey: dlqKeys.all })),
    [qc],
  );
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents((e) => {
    if (e.aggregate_type !== 'DlqEntry') return;
    rememberDlqPosition(e.position);
    throttle.push('dlq');
  });
}
