import { z } from 'zod';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import type { BudgetRef } from './keys';
import { useBudgetWrite } from './mutate';

const id = z
  .string()
  .trim()
  .min(1, 'Required')
  .max(64, 'At most 64 characters')
  .regex(/^[A-Za-z0-9_-]+$/, 'Letters, digits, - and _ only');

export const budgetRefSchema = z.object({ tenant_id: id, project_id: id });

export const reserveSchema = z.object({
  task_id: id,
  model: z.string().trim().min(1, 'Required').max(128, 'At most 128 characters'),
  estimated_tokens: z.coerce.number().int('A whole number').positive('More than 0'),
  ttl_seconds: z.coerce
    .number()
    .int('A whole number')
    .min(1, 'At least 1')
    .max(86_400, 'At most 86,400'),
});
export type ReserveInput = z.infer<typeof reserveSchema>;

export type ReserveAnswer = Schemas['ReserveResponse'];

/** `POST /budget/request`: approved, or denied with a reason (both HTTP 200). */
export const reserve = (b: BudgetRef, input: ReserveInput) =>
  request<ReserveAnswer>('/budget/request', { method: 'POST', body: { ...b, ...input } });

export const useReserve = (b: BudgetRef) => useBudgetWrite(b, (i: ReserveInput) => reserve(b, i));
