import { useCallback, useRef, useState } from 'react';
import { fetchOk } from '@/lib/http';
import type { Schemas } from '@/lib/api/types';

export type VerifyReport = Schemas['VerifyReport'];
export type VerifyProgress = Schemas['VerifyProgress'];
type VerifyLine = Schemas['VerifyLine'];

/** Splits an NDJSON byte stream, chunk by chunk, into its parsed lines. */
export function ndjsonSplitter() {
  let rest = '';
  return (chunk: string, last = false): unknown[] => {
    rest += chunk;
    const lines = rest.split('\n');
    rest = last ? '' : (lines.pop() ?? '');
    return lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
  };
}

/**
 * `GET /audit/verify/stream`: the verification of `GET /audit/verify`, its progress streamed
 * while it runs (at most every 250 ms), the report last. Aborting the signal ends the request,
 * and the server stops verifying.
 */
export async function verifyStream(
  onProgress: (p: VerifyProgress) => void,
  signal?: AbortSignal,
): Promise<VerifyReport> {
  const res = await fetchOk('/audit/verify/stream', { accept: 'application/x-ndjson', signal });
  if (!res.body) throw new Error('the verification answered without a body');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const split = ndjsonSplitter();
  for (;;) {
    const { value, done } = await reader.read();
    for (const line of split(value ?? '', done) as VerifyLine[]) {
      if (line.type === 'progress') onProgress(line);
      else if (line.type === 'result') return line.report;
      else if (line.type === 'error') throw new Error(line.message);
    }
    if (done) throw new Error('the verification ended without a result');
  }
}

export type VerifyState =
  | { status: 'idle' }
  | { status: 'running'; progress: VerifyProgress | null }
  | { status: 'done'; report: VerifyReport }
  | { status: 'failed'; error: unknown }
  | { status: 'stopped' };

/** Runs the streamed verification when asked; `stop` aborts it. */
export function useVerifyStream() {
  const [state, setState] = useState<VerifyState>({ status: 'idle' });
  const abort = useRef<AbortController | null>(null);
  const start = useCallback(() => {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setState({ status: 'running', progress: null });
    verifyStream((progress) => setState({ status: 'running', progress }), controller.signal).then(
      (report) => setState({ status: 'done', report }),
      (error: unknown) =>
        setState(controller.signal.aborted ? { status: 'stopped' } : { status: 'failed', error }),
    );
  }, []);
  const stop = useCallback(() => abort.current?.abort(), []);
  return { state, start, stop };
}
