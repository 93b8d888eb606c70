import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { budgetKeys, budgetReads, ownPosition, type BudgetRef } from './keys';

export type Reservations = Schemas['ReservationsResponse'];
export type OpenReservation = Schemas['OpenReservationBody'];

/** `GET /budget/reservations`: open reservations, the soonest to expire first. */
export const fetchReservations = (b: BudgetRef, signal?: AbortSignal) =>
  budgetReads.read(
    () =>
      request<Reservations>('/budget/reservations', {
        query: { ...b, min_position: ownPosition(b) },
        signal,
      }),
    budgetKeys.reservations(b),
  );

export const reservationsQuery = (b: BudgetRef) =>
  queryOptions({
    queryKey: budgetKeys.reservations(b),
    queryFn: ({ signal }) => fetchReservations(b, signal),
  });

export const useReservations = (b: BudgetRef) => useQuery(reservationsQuery(b));
