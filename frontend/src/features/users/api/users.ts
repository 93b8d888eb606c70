import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type User = Schemas['UserView'];

export const usersKey = ['users'] as const;

/** `GET /users`: every account (never a password hash). */
export const fetchUsers = (signal?: AbortSignal) =>
  request<Schemas['UserList']>('/users', { signal });

export const useUsers = () =>
  useQuery({ queryKey: usersKey, queryFn: ({ signal }) => fetchUsers(signal) });
