import {
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Stack,
  Typography,
} from '@mui/material';
import { CodeBlock } from '@/components/CodeBlock';
import { FactList } from '@/components/FactList';
import { fmtTime } from '@/lib/format';
import { usePreviousEvent, type AuditEvent } from '../api/events';

const ZERO = '0'.repeat(64);

/** One event: its payload and metadata as JSON, and its place in its aggregate's chain. */
export function EventDialog({ event, onClose }: { event: AuditEvent; onClose: () => void }) {
  const previous = usePreviousEvent(event);
  const prevHash =
    event.sequence === 1
      ? `${ZERO} (first event of the aggregate)`
      : previous.data
        ? (previous.data.hash ?? '–')
        : previous.isPending
          ? 'reading…'
          : '–';
  const facts: [string, string][] = [
    ['Position', String(event.global_position)],
    ['Transaction', event.transaction_id],
    ['Recorded', fmtTime(event.recorded_at)],
    ['Aggregate', `${event.aggregate_type} ${event.aggregate_id} #${event.sequence}`],
    ['Event', `${event.event_type} v${event.event_version}`],
    ['Previous hash', prevHash],
    ['Hash', event.hash ?? '–'],
  ];
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="md" aria-labelledby="audit-event-title">
      <DialogTitle id="audit-event-title">Event {event.global_position}</DialogTitle>
      <DialogContent dividers>
        <Stack spacing={2}>
          <FactList facts={facts} mono={['Previous hash', 'Hash']} />
          <Typography variant="subtitle1" component="h3">
            Payload
          </Typography>
          <CodeBlock label="Payload" maxHeight={320}>
            {JSON.stringify(event.payload, null, 2)}
          </CodeBlock>
          <Typography variant="subtitle1" component="h3">
            Metadata
          </Typography>
          <CodeBlock label="Metadata" maxHeight={320}>
            {JSON.stringify(event.metadata, null, 2)}
          </CodeBlock>
        </Stack>
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Close</Button>
      </DialogActions>
    </Dialog>
  );
}
