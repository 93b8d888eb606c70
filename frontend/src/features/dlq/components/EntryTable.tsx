import { memo } from 'react';
import type { Theme } from '@mui/material';
import { VirtualTable } from '@/components/VirtualTable';
import { fmtInt, fmtStamp } from '@/lib/format';
import type { PagedRows } from '@/lib/pagedRows';
import type { DlqEntry } from '../api/list';

const ROW = 44;
const headers = ['Subject', 'Error', 'Attempts', 'Captured', 'State'];
const columns = ['1.2 1 150px', '2 1 200px', '0 0 90px', '0 0 170px', '0 0 110px'];
const cellSx = (t: Theme) => ({ '& .open': { color: t.palette.warning.main, fontWeight: 600 } });

const Row = memo(function Row({
  e,
  index,
  onOpen,
}: {
  e: DlqEntry;
  index: number;
  onOpen: (id: string) => void;
}) {
  return (
    <div role="row" aria-rowindex={index + 2} data-entry={e.id} className="r b c">
      <div role="cell" className="k0">
        <button type="button" className="link" onClick={() => onOpen(e.id)} title={e.id}>
          {e.original_subject}
        </button>
      </div>
      <div role="cell" className="k1" title={e.error}>
        {e.error}
      </div>
      <div role="cell" className="k2">
        {fmtInt(e.attempts)}
      </div>
      <div role="cell" className="k3">
        {fmtStamp(e.created_at)}
      </div>
      <div role="cell" className={e.resolved ? 'k4' : 'k4 open'}>
        {e.resolved ? (e.requeue_count > 0 ? 'Requeued' : 'Resolved') : 'Open'}
      </div>
    </div>
  );
});

/** The entries of the filter; the next page of the server's list loads near the end. */
export function EntryTable({
  rows,
  total,
  loadMore,
  onOpen,
}: {
  rows: PagedRows<DlqEntry>;
  total: number;
  loadMore: () => void;
  onOpen: (id: string) => void;
}) {
  return (
    <VirtualTable
      label="Dead-letter entries"
      testId="dlq-table"
      count={rows.length}
      ariaRowCount={total}
      rowHeight={ROW}
      columns={columns}
      headers={headers}
      minWidth={760}
      sx={cellSx}
      onNearEnd={loadMore}
      renderRow={(i) => (
        <Row
          key={i}
          e={rows.at(i)!}
          index={i}

          onOpen={onOpen}
        />
      )}
    />
  );
}
