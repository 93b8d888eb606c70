import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import type { BudgetRef } from './keys';
import { useBudgetWrite } from './mutate';

/** `POST /budget/release`: gives a reservation back unused. Idempotent. */
export const release = (reservation_id: string) =>
  request<Schemas['ReleaseResponse']>('/budget/release', {
    method: 'POST',
    body: { reservation_id },
  });

export const useRelease = (b: BudgetRef) => useBudgetWrite(b, release);
