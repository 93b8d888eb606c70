import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

export type AdminAction = 'reset' | 'force_open' | 'disable';

/** `POST /circuit-breakers/{name}/reset|force_open|disable` (admin:reset_breakers). */
export const breakerAction = (name: string, action: AdminAction) =>
  request<Schemas['ChangeResponse']>(`/circuit-breakers/${encodeURIComponent(name)}/${action}`, {
    method: 'POST',
  });

export function useBreakerAction() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ name, action }: { name: string; action: AdminAction }) =>
      breakerAction(name, action),
    onSuccess: (b) => {
      qc.setQueryData(breakerKeys.one(b.name), b);
      return qc.invalidateQueries({ queryKey: breakerKeys.list });
    },
  });
}
