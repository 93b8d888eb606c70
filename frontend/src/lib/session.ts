import { create } from 'zustand';
import type { Permission } from './permissions';

import type { Schemas } from './api/types';

/** `GET /auth/me`: `expires_at` in Unix seconds. */
export type SessionUser = Schemas['MeResponse'];

export type SessionStatus = 'unknown' | 'authenticated' | 'anonymous';

interface SessionState {
  status: SessionStatus;
  user: SessionUser | null;
  /** Set when a request found the session gone; the login page says so. */
  expired: boolean;
  signedIn(user: SessionUser): void;
  signedOut(): void;
  expire(): void;
}

/** Who is signed in: session state only (no token: the session is an HttpOnly cookie). */
export const useSession = create<SessionState>((set, get) => ({
  status: 'unknown',
  user: null,
  expired: false,
  signedIn: (user) => set({ status: 'authenticated', user, expired: false }),
  signedOut: () => set({ status: 'anonymous', user: null, expired: false }),
  expire: () => {
    if (get().status === 'authenticated') set({ status: 'anonymous', user: null, expired: true });
  },
}));

export function hasPermission(user: SessionUser | null, p: Permission): boolean {
  return !!user && user.permissions.includes(p);
}

export function useCan(p: Permission): boolean {
  return useSession((s) => hasPermission(s.user, p));
}
