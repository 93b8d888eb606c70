import { localToIso } from '@/lib/time';
import type { AuditFilter } from '../api/keys';

export interface AuditParams {
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  actor: string;
  /** `datetime-local` values. */
  from: string;
  to: string;
  live: boolean;
  /** The event shown in the detail dialog (its global position). */
  event?: number;
}

const textKeys = ['aggregate_type', 'aggregate_id', 'event_type', 'actor', 'from', 'to'] as const;

export function readAuditParams(p: URLSearchParams): AuditParams {
  const event = Number(p.get('event'));
  return {
    aggregate_type: p.get('aggregate_type') ?? '',
    aggregate_id: p.get('aggregate_id') ?? '',
    event_type: p.get('event_type') ?? '',
    actor: p.get('actor') ?? '',
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
    live: p.get('live') === '1',
    event: Number.isInteger(event) && event > 0 ? event : undefined,
  };
}

export function writeAuditParams(v: AuditParams): URLSearchParams {
  const p = new URLSearchParams();
  for (const k of textKeys) if (v[k]) p.set(k, v[k]);
  if (v.live) p.set('live', '1');
  if (v.event) p.set('event', String(v.event));
  return p;
}

export function auditFilter(v: AuditParams): AuditFilter {
  const t = (s: string) => s.trim() || undefined;
  return {
    aggregate_type: t(v.aggregate_type),
    aggregate_id: t(v.aggregate_id),
    event_type: t(v.event_type),
    actor: t(v.actor),
    from: localToIso(v.from),
    to: localToIso(v.to),
  };
}
