import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { ReadMark } from '@/lib/live/readMark';

export type User = Schemas['UserView'];

export const usersKey = ['users'] as const;

/** Where the list's reads stand against the socket (the `users` topic follows from there). */
export const usersReads = new ReadMark();

/** `GET /users`: every account (never a password hash). */
// Accounts are a table, not a read model: the answer has no `read_position`, so the list is
// followed from where the socket stood when it was sent (ReadMark).
export const fetchUsers = (signal?: AbortSignal) => {
  const done = usersReads.reading(usersKey);
  return request<Schemas['UserList']>('/users', { signal }).then((answer) => {
    done(undefined);
    return answer;
  });
};

export const useUsers = () =>
  useQuery({ queryKey: usersKey, queryFn: ({ signal }) => fetchUsers(signal) });
