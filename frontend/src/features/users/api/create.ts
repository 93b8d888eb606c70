import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { usersKey, type User } from './users';

export type NewUser = Schemas['NewUser'];

/** `POST /users`: 201 with the account; 409 when the name is taken. */
export const createUser = (body: NewUser) => request<User>('/users', { method: 'POST', body });

export function useCreateUser() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: createUser,
    onSuccess: () => void qc.invalidateQueries({ queryKey: usersKey }),
  });
}
