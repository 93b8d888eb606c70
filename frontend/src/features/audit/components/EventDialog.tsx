import { Fragment } from 'react';
import {
  Alert,
  Button,
  CircularProgress,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Stack,
  Typography,
} from '@mui/material';
import { CodeBlock } from '@/components/CodeBlock';
import { ErrorAlert } from '@/components/ErrorAlert';
import { FactList } from '@/components/FactList';
import { fmtTime } from '@/lib/format';
import { useAuditEvent, usePreviousEvent, type AuditEvent } from '../api/events';

const ZERO = '0'.repeat(64);

/**
 * The event at `position`, read whole (the list keeps only what its rows show; a link can name
 * an event the list has not read): its payload and metadata as JSON, and its place in its
 * aggregate's chain.
 */
export function EventDialog({ position, onClose }: { position: number; onClose: () => void }) {
  const event = useAuditEvent(position);
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="md" aria-labelledby="audit-event-title">
      <DialogTitle id="audit-event-title">Event {position}</DialogTitle>
      <DialogContent dividers>
        {event.isPending ? (
          <Stack direction="row" spacing={1} sx={{ alignItems: 'center' }} role="status">
            <CircularProgress size={20} aria-hidden />
            <Typography>Reading the event…</Typography>
          </Stack>
        ) : event.isError ? (
          <ErrorAlert error={event.error} what={`event ${position}`} />
        ) : event.data ? (
          <EventFacts event={event.data} />
        ) : (
          <Alert severity="info">The log has no event at position {position}.</Alert>
        )}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Close</Button>
      </DialogActions>
    </Dialog>
  );
}

function EventFacts({ event }: { event: AuditEvent }) {
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
    <Stack spacing={2}>
      <FactList facts={facts} mono={['Previous hash', 'Hash']} />
      {(
        [
          ['Payload', event.payload],
          ['Metadata', event.metadata],
        ] as const
      ).map(([name, json]) => (
        <Fragment key={name}>
          <Typography variant="subtitle1" component="h3">
            {name}
          </Typography>
          <CodeBlock label={name} maxHeight={320}>
            {JSON.stringify(json, null, 2)}
          </CodeBlock>
        </Fragment>
      ))}
    </Stack>
  );
}
