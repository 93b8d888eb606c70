// Query keys of the dead-letter pages, the filter as the server takes it, the position
// reads wait for (`min_position`): the last dead-letter event this tab saw or wrote, and where
// the lists' reads stand against the socket.
import { ReadMark } from '@/lib/live/readMark';

/** The list's and the groups' filter (`GET /dlq`, `GET /dlq/groups`). */
export interface DlqFilter {
  resolved?: boolean;
  subject?: string;
  error_contains?: string;
  /** RFC 3339. */
  since?: string;
  /** RFC 3339. */
  until?: string;
}

export const dlqKeys = {
  all: ['dlq'] as const,
  list: (f: DlqFilter) => ['dlq', 'list', f] as const,
  groups: (f: DlqFilter) => ['dlq', 'groups', f] as const,
  entry: (id: string) => ['dlq', 'entry', id] as const,
  job: (id: string) => ['dlq', 'redrive', id] as const,
};

let seen = 0;

/**
 * The socket carries an event once it is published, which can be before the read model has
 * applied it: reads wait for the latest dead-letter position this tab knows of.
 */
export const dlqPosition = (): number | undefined => (seen > 0 ? seen : undefined);

export function rememberDlqPosition(position: number | null | undefined): void {
  if (typeof position === 'number') seen = Math.max(seen, position);
}

/**
 * Where the list's and the groups' reads stand against the socket: the page subscribes to
 * `dlq` from there, so an entry captured between a read sent before the page (the entry
 * script's) and its subscription arrives as an event.
 */
export const dlqReads = new ReadMark();
