import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { usersKey, type User } from './users';

export type UserPatch = Schemas['UserPatch'];

/** `PATCH /users/{username}`: role, tenants or disabled; it applies to the account's open sessions. */
export const updateUser = (username: string, patch: UserPatch) =>
  request<User>(`/users/${encodeURIComponent(username)}`, { method: 'PATCH', body: patch });

export function useUpdateUser() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ username, patch }: { username: string; patch: UserPatch }) =>
      updateUser(username, patch),
    onSuccess: () => void qc.invalidateQueries({ queryKey: usersKey }),
  });
}
