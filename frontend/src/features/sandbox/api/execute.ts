import { useMutation } from '@tanstack/react-query';
import { request } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type ExecuteRequest = Schemas['SandboxExecuteRequest'];
export type ExecuteResult = Schemas['SandboxExecuteResponse'];

/** `POST /sandbox/execute`: runs the code in a fresh container (through the gateway). */
export const execute = (body: ExecuteRequest) =>
  request<ExecuteResult>('/sandbox/execute', { method: 'POST', body });

export const useExecute = () => useMutation({ mutationFn: execute });
