import { queryOptions, useQuery } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type Pipeline = Schemas['PipelineResponse'];

/** `GET /system/pipeline`: publisher and projection lag. */
export const fetchPipeline = (signal?: AbortSignal) =>
  request<Pipeline>('/system/pipeline', { signal });

export const pipelineQuery = () =>
  queryOptions({
    queryKey: ['dashboard', 'pipeline'],
    queryFn: ({ signal }) => fetchPipeline(signal),
  });

export const usePipeline = () => useQuery(pipelineQuery());
