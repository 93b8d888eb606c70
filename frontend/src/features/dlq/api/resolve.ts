import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys, rememberDlqPosition } from './keys';

export type ResolveRequest = Schemas['ResolveRequest'];

/** `POST /dlq/{id}/resolve`: resolves the entry, publishing it again first with `requeue`. */
export const resolveEntry = (id: string, body: ResolveRequest) =>
  request<Schemas['EntryResponse']>(`/dlq/${encodeURIComponent(id)}/resolve`, {
    method: 'POST',
    body,
  });

export function useResolveEntry(id: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: ResolveRequest) => resolveEntry(id, body),
    onSuccess: (answer) => {
      rememberDlqPosition(answer.position);
      // Not awaited: the caller's own onSuccess (closing the dialog) runs at once, not after
      // the re-reads, which would unmount the form first (and skip it).
      void qc.invalidateQueries({ queryKey: dlqKeys.all });
    },
  });
}
