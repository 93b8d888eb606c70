import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type SandboxLanguages = Schemas['SandboxLanguages'];
export type SandboxLimits = Schemas['SandboxLimits'];

/** `GET /sandbox/languages`: what the sandbox runs and the limits of a run (through the gateway). */
export const fetchLanguages = (signal?: AbortSignal) =>
  request<SandboxLanguages>('/sandbox/languages', { signal });

export const useLanguages = () =>
  useQuery({
    queryKey: ['sandbox', 'languages'],
    queryFn: ({ signal }) => fetchLanguages(signal),
    retry: false,
    staleTime: 60_000,
  });
