import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import { dlqKeys } from './keys';
import type { RedriveJob } from './redrive';

/** `POST /dlq/redrive/{job}/cancel`. */
export const cancelRedrive = (id: string) =>
  request<RedriveJob>(`/dlq/redrive/${encodeURIComponent(id)}/cancel`, { method: 'POST' });

export function useCancelRedrive() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: cancelRedrive,
    onSuccess: (job) => qc.setQueryData(dlqKeys.job(job.id), job),
  });
}
