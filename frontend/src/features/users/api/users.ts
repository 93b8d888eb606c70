import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { ReadMark } from '@/lib/live/readMark';

export type User = Schemas['UserView'];

export const usersKey = ['users'] as const;

/** Where the list's reads stand against the socket (the `users` topic follows from there). */
export const usersReads = new ReadMark();

/** `GET /users`: every account (never a password hash). */
export const fetchUsers = (signal?: AbortSignal) => {
  usersReads.reading();
  return request<Schemas['UserList']>('/users', { signal });
};

export const useUsers = () =>
  useQuery({ queryKey: usersKey, queryFn: ({ signal }) => fetchUsers(signal) });
