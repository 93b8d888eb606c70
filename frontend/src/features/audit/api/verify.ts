import { useMutation } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type VerifyReport = Schemas['VerifyReport'];

/** `GET /audit/verify`: recomputes every chain and the global running hash. */
export const verifyLog = () => request<VerifyReport>('/audit/verify');

/** A mutation, not a query: it runs when asked, never on its own. */
export const useVerify = () => useMutation({ mutationFn: verifyLog });
