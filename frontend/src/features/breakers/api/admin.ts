import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

export type AdminAction = 'reset' | 'force_open' | 'disable';

/**
 * `POST /circuit-breakers/{name}/reset|force_open|disable` (admin:reset_breakers); forcing
 * open and disabling keep the operator's reason in the event.
 */
export const breakerAction = (name: string, action: AdminAction, reason?: string) =>
  request<Schemas['ChangeResponse']>(`/circuit-breakers/${encodeURIComponent(name)}/${action}`, {
    method: 'POST',
    body: action === 'reset' ? undefined : { reason: reason?.trim() || undefined },
  });

export function useBreakerAction() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({
      name,
      action,
      reason,
    }: {
      name: string;
      action: AdminAction;
      reason?: string;
    }) => breakerAction(name, action, reason),
    onSuccess: (b) => {
      qc.setQueryData(breakerKeys.one(b.name), b);
      return qc.invalidateQueries({ queryKey: breakerKeys.list });
    },
  });
}
