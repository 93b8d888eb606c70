import { useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';
import { dlqKeys, dlqPosition } from './keys';

export type DlqEntryDetail = Schemas['EntryBody'];

/** `GET /dlq/{id}`: the entry with its headers, history and exact payload bytes. */
export const fetchDlqEntry = (id: string, signal?: AbortSignal) =>
  request<DlqEntryDetail>(`/dlq/${encodeURIComponent(id)}`, {
    query: { min_position: dlqPosition() },
    signal,
  });

export const useDlqEntry = (id: string | undefined) =>
  useQuery({
    queryKey: dlqKeys.entry(id ?? ''),
    queryFn: ({ signal }) => fetchDlqEntry(id!, signal),
    enabled: !!id,
  });
