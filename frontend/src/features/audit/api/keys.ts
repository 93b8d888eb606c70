/** `GET /audit/events` filters (and `/audit/export`'s: the same). */
export interface AuditFilter {
  aggregate_type?: string;
  aggregate_id?: string;
  event_type?: string;
  actor?: string;
  /** RFC 3339, inclusive. */
  from?: string;
  /** RFC 3339, exclusive. */
  to?: string;
}

export const auditKeys = {
  all: ['audit'] as const,
  events: (f: AuditFilter) => ['audit', 'events', f] as const,
  event: (position: number) => ['audit', 'event', position] as const,
  previous: (type: string, id: string, sequence: number) =>
    ['audit', 'previous', type, id, sequence] as const,
  verify: ['audit', 'verify'] as const,
};
