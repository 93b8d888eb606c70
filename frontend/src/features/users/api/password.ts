import { useMutation } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { User } from './users';

/** `POST /users/{username}/password`: sets a new password. */
export const resetPassword = (username: string, password: string) =>
  request<User>(`/users/${encodeURIComponent(username)}/password`, {
    method: 'POST',
    body: { password },
  });

export const useResetPassword = () =>
  useMutation({
    mutationFn: ({ username, password }: { username: string; password: string }) =>
      resetPassword(username, password),
  });
