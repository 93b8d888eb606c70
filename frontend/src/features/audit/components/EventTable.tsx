import { memo } from 'react';
import { VirtualTable } from '@/components/VirtualTable';
import { fmtTime } from '@/lib/format';
import type { PagedRows } from '@/lib/pagedRows';
import type { AuditRow } from '../api/events';

const ROW = 40;
const headers = ['Position', 'Recorded', 'Type', 'Aggregate', 'Event', 'Actor'];
const columns = ['0 0 90px', '0 0 170px', '0 0 130px', '1.5 1 160px', '1.2 1 160px', '0 0 130px'];

const Row = memo(function Row({
  e,
  index,
  onOpen,
}: {
  e: AuditRow;
  index: number;
  onOpen: (position: number) => void;
}) {
  return (
    <div role="row" aria-rowindex={index + 2} data-position={e.global_position} className="r b c">
      <div role="cell" className="k0">
        <button type="button" className="link" onClick={() => onOpen(e.global_position)}>
          {e.global_position}
        </button>
      </div>
      <div role="cell" className="k1">
        {fmtTime(e.recorded_at)}
      </div>
      <div role="cell" className="k2">
        {e.aggregate_type}
      </div>
      <div role="cell" className="k3" title={e.aggregate_id}>
        {e.aggregate_id}
      </div>
      <div role="cell" className="k4">
        {e.event_type}
      </div>
      <div role="cell" className="k5">
        {e.actor ?? '–'}
      </div>
    </div>
  );
});

/** The events of the filter in log order; the next page loads near the end. */
export function EventTable({
  rows,
  loadMore,
  follow,
  onOpen,
}: {
  rows: PagedRows<AuditRow>;
  loadMore: () => void;
  /** Live tail: keep the newest row in view as rows arrive. */
  follow: boolean;
  onOpen: (position: number) => void;
}) {
  return (
    <VirtualTable
      label="Audit events"
      testId="audit-table"
      count={rows.length}
      rowHeight={ROW}
      columns={columns}
      headers={headers}
      minWidth={860}
      onNearEnd={loadMore}
      follow={follow}
      renderRow={(i) => <Row key={i} e={rows.at(i)!} index={i} onOpen={onOpen} />}
    />
  );
}
