import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys, rememberDlqPosition } from './keys';

export type RequeueEditedRequest = Schemas['RequeueEditedRequest'];

/**
 * `POST /dlq/{id}/requeue_edited`: publishes the corrected payload on the entry's subject
 * (with its headers) and resolves it; the event keeps both payloads' SHA-256 and who edited.
 */
export const requeueEdited = (id: string, body: RequeueEditedRequest) =>
  request<Schemas['EntryResponse']>(`/dlq/${encodeURIComponent(id)}/requeue_edited`, {
    method: 'POST',
    body,
  });

export function useRequeueEdited(id: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: RequeueEditedRequest) => requeueEdited(id, body),
    onSuccess: (answer) => {
      rememberDlqPosition(answer.position);
      void qc.invalidateQueries({ queryKey: dlqKeys.all });
    },
  });
}
