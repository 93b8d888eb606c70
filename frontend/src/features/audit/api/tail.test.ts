import { describe, expect, it } from 'vitest';
import type { AuditRow, AuditRowsPage } from './events';
import { Delivered, mergeTailPage, settle, type AuditList } from './tail';

const event = (position: number): AuditRow => ({
  global_position: position,
  aggregate_type: 'Budget',
  aggregate_id: 'acme/web',
  event_type: 'TokensReserved',
  actor: null,
  recorded_at: '2026-12-03T08:00:00Z',
});
const page = (positions: number[], next: number | null = null): AuditRowsPage => ({
  events: positions.map(event),
  next_after_position: next,
  read_position: 0,
});
const list = (...pages: AuditRowsPage[]): AuditList => ({
  pages,
  pageParams: pages.map((_, i) => i),
});
const positions = (l: AuditList) => l.pages.flatMap((p) => p.events.map((e) => e.global_position));

describe('the Audit log tail', () => {
  it('reads a late commit below the last row from just before it and puts it in place', () => {
    // 3 had its position before 4 and 5 but committed after the list was read.
    const shown = list(page([1, 2], 2), page([4, 5]));
    const delivered = new Delivered();
    for (const p of [4, 5, 3]) delivered.add(p); // the socket, in commit order from the read
    const read = delivered.next(shown);
    expect(read).toEqual({ kind: 'late', after: 2, last: 5 });
    const merged = mergeTailPage(shown, read!, page([3, 4, 5]));
    expect(positions(merged)).toEqual([1, 2, 3, 4, 5]);
    expect(merged.pages[0]!.events.map((e) => e.global_position)).toEqual([1, 2, 3]);
    settle(delivered, read!, page([3, 4, 5]));
    expect(delivered.next(merged)).toBeNull();
    expect(delivered.size).toBe(0);
  });

  it('forgets a late position the filter leaves out', () => {
    const shown = list(page([1, 2, 5]));
    const delivered = new Delivered();
    delivered.add(3);
    const read = delivered.next(shown)!;
    expect(read.kind).toBe('late');
    const fetched = page([5]); // 3 does not match
    expect(positions(mergeTailPage(shown, read, fetched))).toEqual([1, 2, 5]);
    settle(delivered, read, fetched);
    expect(delivered.size).toBe(0);
  });

  it('reads what follows the last row once the list is at its end', () => {
    const shown = list(page([1, 2]));
    const delivered = new Delivered();
    delivered.add(2); // shown already: nothing to do for it
    expect(delivered.next(shown)).toBeNull();
    delivered.add(6);
    const read = delivered.next(shown)!;
    expect(read).toEqual({ kind: 'after', after: 2, last: 2 });
    const merged = mergeTailPage(shown, read, page([6]));
    expect(positions(merged)).toEqual([1, 2, 6]);
    settle(delivered, read, page([6]));
    expect(delivered.size).toBe(0);
  });

  it('leaves what lies past the last row to paging while the list is not at its end', () => {
    const shown = list(page([1, 2], 2));
    const delivered = new Delivered();
    delivered.add(9);
    expect(delivered.next(shown)).toBeNull();
    expect(delivered.size).toBe(1);
    // Paging read on, without it (its read came before 9 committed): now it is late.
    const paged = list(page([1, 2], 2), page([8, 10]));
    expect(delivered.next(paged)).toEqual({ kind: 'late', after: 8, last: 10 });
  });

  it("never appends a row twice when an 'after' read was planned from an older list", () => {
    // Two reads planned from the same list (a pass that overlapped another, or paging
    // meanwhile): the second's page carries the row the first appended.
    const shown = list(page([1, 2]));
    const delivered = new Delivered();
    delivered.add(3);
    const first = delivered.next(shown)!;
    const second = delivered.next(shown)!;
    let cache = mergeTailPage(shown, first, page([3]));
    cache = mergeTailPage(cache, second, page([3, 4]));
    expect(positions(cache)).toEqual([1, 2, 3, 4]);
  });

  it("puts a row an 'after' page has below the list's last row in place, not at the end", () => {
    // Planned when the list ended at 2; another pass appended 5 since; the page has 3 (a
    // late commit) and 5 again.
    const read = { kind: 'after', after: 2, last: 2 } as const;
    const merged = mergeTailPage(list(page([1, 2]), page([5])), read, page([3, 5, 6]));
    expect(positions(merged)).toEqual([1, 2, 3, 5, 6]);
  });

  it('keeps at most its bound of positions, forgetting the oldest', () => {
    const delivered = new Delivered(2);
    for (const p of [1, 2, 3]) delivered.add(p);
    expect(delivered.size).toBe(2);
  });
});
