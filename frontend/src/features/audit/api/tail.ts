// The Audit log's live tail, in commit order. The list is in position order, but positions are
// taken at insert and transactions commit in another order: an event whose position is below
// the last row shown can commit after the list was read. The socket delivers events in commit
// order from where the list's read stood (`read_position`), so such an event arrives; the tail
// then reads the list from just before it and merges what it lacks in place.
import type { InfiniteData } from '@tanstack/react-query';
import type { AuditRow, AuditRowsPage } from './events';

export type AuditList = InfiniteData<AuditRowsPage, number>;

/** Positions delivered on the socket that the list may still lack (bounded: the oldest go). */
export class Delivered {
  private readonly positions = new Set<number>();
  constructor(private readonly max = 10_000) {}

  add(p: number): void {
    this.positions.add(p);
    if (this.positions.size > this.max) {
      const oldest = this.positions.values().next().value;
      if (oldest !== undefined) this.positions.delete(oldest);
    }
  }

  get size(): number {
    return this.positions.size;
  }

  /** Forgets those at or below `upTo` (and at or above `from`). */
  forget(upTo: number, from = -Infinity): void {
    for (const p of [...this.positions]) if (p >= from && p <= upTo) this.positions.delete(p);
  }

  /** The list's rows and where it ends: what the tail reads next. */
  next(list: AuditList): TailRead | null {
    const rows = list.pages.flatMap((p) => p.events);
    const shown = new Set(rows.map((e) => e.global_position));
    const last = rows.at(-1)?.global_position ?? 0;
    let late = Infinity;
    for (const p of this.positions) {
      if (shown.has(p)) this.positions.delete(p);
      else if (p <= last && p < late) late = p;
    }
    if (late !== Infinity) return { kind: 'late', after: late - 1, last };
    // Past the last row: read what follows it once the list is at its end (paging reads the
    // rest, and what it still lacks then comes back here as late).
    const atEnd = !list.pages.at(-1)?.next_after_position;
    if (atEnd && this.positions.size) return { kind: 'after', after: last, last };
    return null;
  }
}

/**
 * A read the tail makes: `late`, from just before an event below the last row that the list
 * lacks; `after`, what follows the last row.
 */
export interface TailRead {
  kind: 'late' | 'after';
  after: number;
  /** The list's last position when the read was planned. */
  last: number;
}

/**
 * The list with a page read by the tail merged in: the events it lacks go into place (by
 * position) up to its last row (for `late`, only those), and for `after` the rest is appended.
 * The list may have moved since the read was planned (another pass, paging), so an `after` page
 * can carry rows the list shows now: only what it lacks is merged, never a row twice.
 */
export function mergeTailPage(list: AuditList, read: TailRead, page: AuditRowsPage): AuditList {
  const rows = list.pages.flatMap((p) => p.events);
  const shown = new Set(rows.map((e) => e.global_position));
  const last = rows.at(-1)?.global_position ?? 0;
  const missing = page.events.filter((e) => !shown.has(e.global_position));
  // A `late` read may run past the list's end, which paging reads, not the tail.
  const upTo = read.kind === 'late' ? read.last : last;
  const below = missing.filter((e) => e.global_position <= upTo);
  const past = read.kind === 'after' ? missing.filter((e) => e.global_position > last) : [];
  let merged = list;
  if (below.length) {
    const pages = list.pages.map((p) => ({ ...p, events: [...p.events] }));
    for (const e of below) {
      // The last page whose first row is at or before it (the first page otherwise).
      let i = pages.length - 1;
      while (i > 0 && (pages[i]!.events[0]?.global_position ?? Infinity) > e.global_position)
        i -= 1;
      insertByPosition(pages[i]!.events, e);
    }
    merged = { pages, pageParams: list.pageParams };
  }
  if (past.length)
    merged = {
      pages: [...merged.pages, { ...page, events: past }],
      pageParams: [...merged.pageParams, last],
    };
  return merged;
}

function insertByPosition(events: AuditRow[], e: AuditRow): void {
  let at = events.length;
  while (at > 0 && events[at - 1]!.global_position > e.global_position) at -= 1;
  events.splice(at, 0, e);
}

/**
 * After a tail read: the delivered positions it settled. A `late` read covers every position
 * from its start up to its last event (all of them when the page was not full) and at most the
 * list's last row; one of those still missing does not match the filter. An `after` read covers
 * what it returned (the read came after the socket delivered them: they had committed).
 */
export function settle(delivered: Delivered, read: TailRead, page: AuditRowsPage): void {
  const end = page.next_after_position ?? Infinity;
  if (read.kind === 'late') delivered.forget(Math.min(end, read.last), read.after + 1);
  else delivered.forget(page.next_after_position ? end : Infinity, read.after + 1);
}
