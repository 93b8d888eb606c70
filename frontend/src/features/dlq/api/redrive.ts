import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys } from './keys';

export type RedriveJob = Schemas['RedriveJob'];
export type RedriveFilter = Schemas['RedriveFilter'];

/** `POST /dlq/redrive`: a job that requeues every matching open entry at `rate` per second. */
export const startRedrive = (filter: RedriveFilter, rate: number) =>
  request<RedriveJob>('/dlq/redrive', { method: 'POST', body: { filter, rate } });

export function useStartRedrive() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ filter, rate }: { filter: RedriveFilter; rate: number }) =>
      startRedrive(filter, rate),
    onSuccess: (job) => qc.setQueryData(dlqKeys.job(job.id), job),
  });
}
