import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type SandboxRun = Schemas['SandboxRunBody'];

export const sandboxRunKeys = { mine: ['sandbox', 'runs', 'mine'] as const };

/** `GET /sandbox/runs`: the signed-in person's latest runs, from the audit log. */
export const fetchMyRuns = (signal?: AbortSignal) =>
  request<Schemas['SandboxRunsResponse']>('/sandbox/runs', { query: { limit: 20 }, signal });

/**
 * The person's recent runs. A run reaches the log a moment after its answer (the sandbox
 * reports it over NATS): after a run of their own, `awaiting` (the newest run id known before
 * it, or `null` for none) makes the list read again every 500 ms until a newer run shows,
 * for at most 10 s. Nothing else polls.
 */
export function useMyRuns(awaiting: { since: number; newestBefore: string | null } | undefined) {
  return useQuery({
    queryKey: sandboxRunKeys.mine,
    queryFn: ({ signal }) => fetchMyRuns(signal),
    refetchInterval: (q) => {
      if (!awaiting || Date.now() - awaiting.since > 10_000) return false;
      const newest = q.state.data?.runs[0]?.id ?? null;
      return newest === awaiting.newestBefore ? 500 : false;
    },
  });
}
