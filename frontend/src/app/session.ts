import { useEffect } from 'react';
import { request, setUnauthenticatedHandler } from '@/lib/http';
import { useLiveClient } from '@/lib/live/LiveProvider';
import { useSession, type SessionUser } from '@/lib/session';
import { fetchMe } from '@/features/auth/api/me';

let first: Promise<SessionUser> | null = null;

/**
 * Asks who the cookie belongs to before React renders anything (main.tsx): the answer, the
 * page's chunk and the first render then overlap instead of following one another.
 */
export function startSessionCheck(): Promise<SessionUser> {
  first ??= fetchMe();
  return first;
}

/** Finds out who the cookie belongs to, and notices when the session ends. */
export function useSessionBootstrap(): void {
  useEffect(() => {
    setUnauthenticatedHandler(() => useSession.getState().expire());
    const me = first ?? fetchMe();
    first = null;
    me.then((u) => useSession.getState().signedIn(u)).catch(() =>
      useSession.getState().signedOut(),
    );
  }, []);
}

/** At the token's expiry (or when the socket is closed for it) ask the server; a 401 ends the session. */
export function useSessionExpiry(): void {
  const user = useSession((s) => s.user);
  const live = useLiveClient();
  useEffect(() => {
    if (!user?.expires_at) return;
    const ms = user.expires_at * 1000 - Date.now() + 1000;
    if (!Number.isFinite(ms)) return;
    const t = setTimeout(() => void recheck(), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => clearTimeout(t);
  }, [user?.expires_at]);
  useEffect(
    () =>
      live.onClose(({ code }) => {
        if (code === 1008) void recheck();
      }),
    [live],
  );
}

async function recheck(): Promise<void> {
  try {
    const u = await request<SessionUser>('/auth/me');
    useSession.getState().signedIn(u);
  } catch {
    /* a 401 has already ended the session through the handler */
  }
}
