import { useMutation } from '@tanstack/react-query';
import { z } from 'zod';
import { request } from '@/lib/http';
import { useSession } from '@/lib/session';
import { fetchMe } from './me';

export const loginSchema = z.object({
  username: z.string().trim().min(1, 'Enter your username').max(64),
  password: z.string().min(1, 'Enter your password').max(1024),
});
export type LoginInput = z.infer<typeof loginSchema>;

/**
 * `POST /auth/login`: the server sets the HttpOnly session cookie. The token in the answer is
 * deliberately dropped: script never holds it.
 */
export async function login(input: LoginInput): Promise<void> {
  await request<unknown>('/auth/login', { method: 'POST', body: input, expect401: true });
}

export function useLogin() {
  const signedIn = useSession((s) => s.signedIn);
  return useMutation({
    mutationFn: async (input: LoginInput) => {
      await login(input);
      return fetchMe();
    },
    onSuccess: (user) => signedIn(user),
  });
}
