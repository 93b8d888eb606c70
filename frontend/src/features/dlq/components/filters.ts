import { localToIso } from '@/lib/time';
import type { DlqFilter } from '../api/keys';

export type DlqView = 'entries' | 'groups';
export type DlqStatus = 'open' | 'resolved' | 'all';

/** The page's state as the URL carries it (a filtered view is a link someone can share). */
export interface DlqParams {
  view: DlqView;
  status: DlqStatus;
  subject: string;
  error: string;
  /** `datetime-local` values (the reader's time zone). */
  since: string;
  until: string;
  /** The entry shown in the detail dialog. */
  entry?: string;
  /** The redrive job whose progress is shown. */
  job?: string;
}

const statuses: DlqStatus[] = ['open', 'resolved', 'all'];

export function readDlqParams(p: URLSearchParams): DlqParams {
  const status = p.get('status') as DlqStatus | null;
  return {
    view: p.get('view') === 'groups' ? 'groups' : 'entries',
    status: status && statuses.includes(status) ? status : 'open',
    subject: p.get('subject') ?? '',
    error: p.get('error') ?? '',
    since: p.get('since') ?? '',
    until: p.get('until') ?? '',
    entry: p.get('entry') ?? undefined,
    job: p.get('job') ?? undefined,
  };
}

export function writeDlqParams(v: DlqParams): URLSearchParams {
  const p = new URLSearchParams();
  if (v.view !== 'entries') p.set('view', v.view);
  if (v.status !== 'open') p.set('status', v.status);
  if (v.subject) p.set('subject', v.subject);
  if (v.error) p.set('error', v.error);
  if (v.since) p.set('since', v.since);
  if (v.until) p.set('until', v.until);
  if (v.entry) p.set('entry', v.entry);
  if (v.job) p.set('job', v.job);
  return p;
}

/** What the server filters on. */
export function serverFilter(v: DlqParams): DlqFilter {
  return {
    resolved: v.status === 'all' ? undefined : v.status === 'resolved',
    subject: v.subject.trim() || undefined,
    error_contains: v.error.trim() || undefined,
    since: localToIso(v.since),
    until: localToIso(v.until),
  };
}
