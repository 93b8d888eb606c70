import { useMutation, useQueryClient } from '@tanstack/react-query';
import { request } from '@/lib/http';
import { useSession } from '@/lib/session';

/** `POST /auth/logout` clears the cookie; the cache is emptied so nothing of the session stays. */
export function useLogout() {
  const signedOut = useSession((s) => s.signedOut);
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => request<unknown>('/auth/logout', { method: 'POST', expect401: true }),
    onSettled: () => {
      signedOut();
      qc.clear();
    },
  });
}
