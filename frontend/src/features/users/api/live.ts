import { useEffect, useMemo } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLiveEvents, useLiveTopics } from '@/lib/live/LiveProvider';
import { keyedThrottle } from '@/lib/throttle';
import { usersKey, usersReads } from './users';

/**
 * Keeps the accounts current from the socket's `users` topic (admins only): a change made
 * through the API (by another admin, or on this page) re-reads the list (at most every 250 ms).
 * Accounts are a table changed in the same transaction as the event, so the read after the
 * event sees it. `controlplane user add` and the bootstrap admin write no event
 * (gateway/src/users.rs `upsert_user`): an account the CLI adds or changes shows once the
 * list is read again (the page opened after its data went stale, or a resync).
 */
export function useUsersLive() {
  const qc = useQueryClient();
  const throttle = useMemo(
    () => keyedThrottle<string>(250, () => void qc.invalidateQueries({ queryKey: usersKey })),
    [qc],
  );
  useLiveTopics(['users'], { reads: usersReads, onGap: () => throttle.push('users') });
  useEffect(() => () => throttle.cancel(), [throttle]);
  useLiveEvents((e) => {
    if (e.aggregate_type === 'UserAccount') throttle.push('users');
  });
}
