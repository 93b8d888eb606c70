import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { breakerKeys } from './keys';

/** `POST /circuit-breakers/reset_all`: closes every breaker that is not closed and clear. */
export const resetAll = () =>
  request<Schemas['ResetAllResponse']>('/circuit-breakers/reset_all', { method: 'POST' });

export function useResetAll() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: resetAll,
    onSuccess: () => qc.invalidateQueries({ queryKey: breakerKeys.all }),
  });
}
