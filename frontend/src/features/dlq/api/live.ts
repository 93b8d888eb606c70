import { useEffect, useMemo } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { keyedThrottle } from '@/lib/throttle';
import { dlqKeys, dlqReads, rememberDlqPosition } from './keys';

/**
 * Keeps the dead-letter pages current from the socket's `dlq` topic: an entry captured,
 * recaptured or resolved re-reads what is on screen (at most every 250 ms), and those reads
 * wait for the event's position. The topic is subscribed from where the lists were read (a
 * read sent before the page, e.g. by the entry script, misses nothing that follows it), or,
 * when that cannot be replayed, the lists are read again once it is subscribed.
 */
export function useDlqLive() {
  const qc = useQueryClient();
  const throttle = useMemo(
    () => keyedThrottle<string>(250, () => void qc.invalidateQueries({ queryKey: dlqKeys.all })),
    [qc],
  );
  useLiveTopics(['dlq'], { reads: dlqReads, onGap: () => throttle.push('dlq') });
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents((e) => {
    if (e.aggregate_type !== 'DlqEntry') return;
    rememberDlqPosition(e.position);
    throttle.push('dlq');
  });
}
