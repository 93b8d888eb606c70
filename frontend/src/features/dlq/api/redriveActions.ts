import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import { dlqKeys } from './keys';
import type { RedriveJob } from './redrive';

/** What an operator may do to a redrive job; each is one endpoint of the same shape. */
export type RedriveAction = 'pause' | 'resume' | 'cancel';

/**
 * `POST /dlq/redrive/{job}/pause` (running → paused: no entry moves until resumed),
 * `…/resume` (paused → running, from where it stopped) and `…/cancel` (running or paused →
 * cancelled, for good). Each answers the job; 409 when its state does not allow it.
 */
export const redriveAction = (id: string, action: RedriveAction) =>
  request<RedriveJob>(`/dlq/redrive/${encodeURIComponent(id)}/${action}`, { method: 'POST' });

export function useRedriveAction() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ id, action }: { id: string; action: RedriveAction }) =>
      redriveAction(id, action),
    onSuccess: (job) => qc.setQueryData(dlqKeys.job(job.id), job),
  });
}
