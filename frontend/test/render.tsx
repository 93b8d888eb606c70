import type { ReactNode } from 'react';
import { render } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { QueryClientProvider } from '@tanstack/react-query';
import { createQueryClient } from '@/lib/queryClient';
import { useSession } from '@/lib/session';

export function signIn(role: string, permissions: string[]) {
  useSession.getState().signedIn({ username: 'u', role, permissions, expires_at: 2_000_000_000 });
}

export function renderAt(ui: ReactNode, path = '/') {
  const qc = createQueryClient();
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[path]}>{ui}</MemoryRouter>
    </QueryClientProvider>,
  );
}

/** A fetch that answers each call with the next of `answers` and records the requests. */
export function fakeFetch(answers: { status: number; body: unknown }[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fn = async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const a = answers.shift() ?? {
      status: 500,
      body: { error: { code: 'internal', message: 'no answer' } },
    };
    return new Response(JSON.stringify(a.body), {
      status: a.status,
      headers: { 'content-type': 'application/json' },
    });
  };
  globalThis.fetch = fn as unknown as typeof fetch;
  return calls;
}
