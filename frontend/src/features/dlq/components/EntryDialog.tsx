import { useMemo, useState } from 'react';
import {
  Alert,
  Box,
  Button,
  Checkbox,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  Stack,
  Tab,
  Tabs,
  TextField,
  ToggleButton,
  ToggleButtonGroup,
  Typography,
} from '@mui/material';
import { CodeBlock } from '@/components/CodeBlock';
import { ErrorAlert, errorText } from '@/components/ErrorAlert';
import { FactList } from '@/components/FactList';
import { PermissionButton } from '@/components/PermissionButton';
import { CardSkeleton } from '@/components/Skeletons';
import { fmtInt, fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { toast } from '@/lib/ui';
import { useDlqEntry, type DlqEntryDetail } from '../api/entry';
import { useResolveEntry } from '../api/resolve';
import { EditRequeueForm } from './EditRequeueForm';
import { bytesOf, hexDump, prettyJson, textOf } from './payload';

type PayloadView = 'json' | 'text' | 'hex';
const HEX_MAX = 64 * 1024;

/**
 * The payload (JSON, text or hex of its exact bytes). An edited entry shows the edit by
 * default and the captured payload on demand: the original stays readable.
 */
function Payload({ entry }: { entry: DlqEntryDetail }) {
  const [which, setWhich] = useState<'edited' | 'captured'>(entry.edited ? 'edited' : 'captured');
  const shownPayload =
    which === 'edited' && entry.edited
      ? {
          payload: entry.edited.payload,
          encoding: entry.edited.encoding,
          base64: entry.edited.payload_base64,
        }
      : { payload: entry.payload, encoding: entry.encoding, base64: entry.payload_base64 ?? '' };
  const [view, setView] = useState<PayloadView>(entry.encoding === 'json' ? 'json' : 'text');
  const bytes = useMemo(() => bytesOf(shownPayload.base64), [shownPayload.base64]);
  const jsonView = view === 'json' && shownPayload.encoding !== 'json' ? 'text' : view;
  const shown =
    jsonView === 'json'
      ? prettyJson(shownPayload.payload)
      : jsonView === 'text'
        ? textOf(bytes)
        : hexDump(bytes, HEX_MAX);
  return (
    <Stack spacing={1}>
      {entry.edited && (
        <Stack direction="row" spacing={1} sx={{ alignItems: 'center', flexWrap: 'wrap' }}>
          <ToggleButtonGroup
            size="small"
            exclusive
            value={which}
            onChange={(_, v) => v && setWhich(v)}
            aria-label="Which payload"
          >
            <ToggleButton value="edited">Edited</ToggleButton>
            <ToggleButton value="captured">Captured</ToggleButton>
          </ToggleButtonGroup>
          <Typography variant="body2" color="text.secondary">
            edited by {entry.edited.edited_by} at {fmtTime(entry.edited.edited_at)}; requeues send
            the edit
          </Typography>
        </Stack>
      )}
      <Stack direction="row" spacing={1} sx={{ alignItems: 'center', flexWrap: 'wrap' }}>
        <ToggleButtonGroup
          size="small"
          exclusive
          value={jsonView}
          onChange={(_, v) => v && setView(v)}
          aria-label="Payload view"
        >
          <ToggleButton value="json" disabled={shownPayload.encoding !== 'json'}>
            JSON
          </ToggleButton>
          <ToggleButton value="text">Text</ToggleButton>
          <ToggleButton value="hex">Hex</ToggleButton>
        </ToggleButtonGroup>
        <Typography variant="body2" color="text.secondary">
          {fmtInt(bytes.length)} bytes · kept as {shownPayload.encoding}
        </Typography>
      </Stack>
      <CodeBlock label="Payload" testId="payload">
        {shown}
      </CodeBlock>
      {view === 'hex' && bytes.length > HEX_MAX && (
        <Typography variant="caption">
          The first {fmtInt(HEX_MAX)} bytes of {fmtInt(bytes.length)}.
        </Typography>
      )}
    </Stack>
  );
}

function Facts({ entry }: { entry: DlqEntryDetail }) {
  const facts: [string, string][] = [
    ['Id', entry.id],
    ['Subject', entry.original_subject],
    ['Error', entry.error],
    ['Attempts', fmtInt(entry.attempts)],
    ['Captured', fmtTime(entry.created_at)],
    ['State', entry.resolved ? `resolved by ${entry.resolved_by ?? '?'}` : 'open'],
    ['Requeued', `${fmtInt(entry.requeue_count)} times`],
    ['Stream', entry.stream ? `${entry.stream} #${entry.stream_seq ?? '?'}` : '–'],
    ['Consumer', entry.consumer ?? '–'],
  ];
  if (entry.edited) {
    facts.push(
      ['Edited', `by ${entry.edited.edited_by} at ${fmtTime(entry.edited.edited_at)}`],
      ['Captured SHA-256', entry.edited.original_sha256],
      ['Edited SHA-256', entry.edited.sha256],
    );
  }
  return <FactList facts={facts} mono={['Captured SHA-256', 'Edited SHA-256']} />;
}

function Headers({ entry }: { entry: DlqEntryDetail }) {
  const headers = Object.entries(entry.headers ?? {});
  if (!headers.length) return <Typography>No headers.</Typography>;
  return (
    <Box component="table" sx={{ borderCollapse: 'collapse', width: '100%', fontSize: 14 }}>
      <thead>
        <tr>
          <Box component="th" sx={{ textAlign: 'left', p: 0.5 }}>
            Name
          </Box>
          <Box component="th" sx={{ textAlign: 'left', p: 0.5 }}>
            Value
          </Box>
        </tr>
      </thead>
      <tbody>
        {headers.flatMap(([name, values]) =>
          values.map((v, i) => (
            <tr key={`${name}-${i}`}>
              <Box component="td" sx={{ p: 0.5, fontWeight: 600 }}>
                {name}
              </Box>
              <Box component="td" sx={{ p: 0.5, overflowWrap: 'anywhere' }}>
                {v}
              </Box>
            </tr>
          )),
        )}
      </tbody>
    </Box>
  );
}

function History({ entry }: { entry: DlqEntryDetail }) {
  return (
    <Box component="ol" sx={{ m: 0, pl: 3 }}>
      {(entry.history ?? []).map((h, i) => (
        <li key={i}>
          <Typography>
            <strong>{h.action}</strong> by {h.actor} at {fmtTime(h.at)}
            {h.note ? ` — “${h.note}”` : ''}
          </Typography>
          {h.error && (
            <Typography variant="body2" color="text.secondary">
              {h.error}
            </Typography>
          )}
          {h.edited_sha256 && (
            <Typography variant="caption" color="text.secondary" component="div">
              SHA-256 {h.original_sha256?.slice(0, 16)}… → {h.edited_sha256.slice(0, 16)}…
            </Typography>
          )}
          {h.message_id && (
            <Typography variant="caption" color="text.secondary">
              message id {h.message_id}
            </Typography>
          )}
        </li>
      ))}
    </Box>
  );
}

function ResolveForm({ entry, onDone }: { entry: DlqEntryDetail; onDone: () => void }) {
  const [note, setNote] = useState('');
  const [requeue, setRequeue] = useState(true);
  const resolve = useResolveEntry(entry.id);
  const submit = () =>
    resolve.mutate(
      { note: note.trim() || undefined, requeue },
      {
        onSuccess: () => {
          toast(requeue ? 'Resolved and requeued' : 'Resolved', 'success');
          onDone();
        },
      },
    );
  return (
    <Stack
      component="form"
      spacing={1.5}
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
      aria-label="Resolve"
    >
      <TextField
        label="Note"
        size="small"
        value={note}
        onChange={(e) => setNote(e.target.value)}
        slotProps={{ htmlInput: { maxLength: 1000 } }}
        helperText="Why it is resolved; kept in the entry's history."
      />
      <FormControlLabel
        control={<Checkbox checked={requeue} onChange={(e) => setRequeue(e.target.checked)} />}
        label={
          entry.edited
            ? 'Requeue: publish the edited payload and the headers again on its subject'
            : 'Requeue: publish the original payload and headers again on its subject'
        }
      />
      {resolve.isError && <Alert severity="error">{errorText(resolve.error)}</Alert>}
      <Box>
        <PermissionButton
          permission={perm.writeDlq}
          type="submit"
          variant="contained"
          disabled={resolve.isPending}
        >
          {requeue ? 'Resolve and requeue' : 'Resolve'}
        </PermissionButton>
      </Box>
    </Stack>
  );
}

/** An entry: payload (JSON, text, hex), headers, facts, history; resolve when open. */
export function EntryDialog({ id, onClose }: { id: string; onClose: () => void }) {
  const entry = useDlqEntry(id);
  const [tab, setTab] = useState(0);
  const [acting, setActing] = useState<'resolve' | 'edit' | null>(null);
  const e = entry.data;
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="md" aria-labelledby="dlq-entry-title">
      <DialogTitle id="dlq-entry-title">Dead letter {id}</DialogTitle>
      <DialogContent dividers>
        {entry.isPending ? (
          <CardSkeleton height={240} />
        ) : entry.isError ? (
          <ErrorAlert error={entry.error} what="the entry" />
        ) : e ? (
          <Stack spacing={2}>
            <Tabs
              value={tab}
              onChange={(_, t) => setTab(t)}
              aria-label="Entry"
              variant="scrollable"
            >
              <Tab label="Payload" />
              <Tab label="Details" />
              <Tab label={`Headers (${Object.keys(e.headers ?? {}).length})`} />
              <Tab label={`History (${(e.history ?? []).length})`} />
            </Tabs>
            {tab === 0 && <Payload entry={e} />}
            {tab === 1 && <Facts entry={e} />}
            {tab === 2 && <Headers entry={e} />}
            {tab === 3 && <History entry={e} />}
            {acting === 'resolve' && <ResolveForm entry={e} onDone={onClose} />}
            {acting === 'edit' && (
              <EditRequeueForm entry={e} onCancel={() => setActing(null)} onDone={onClose} />
            )}
          </Stack>
        ) : null}
      </DialogContent>
      <DialogActions>
        {e && !e.resolved && !acting && (
          <>
            <PermissionButton permission={perm.writeDlq} onClick={() => setActing('edit')}>
              Edit, then requeue…
            </PermissionButton>
            <PermissionButton permission={perm.writeDlq} onClick={() => setActing('resolve')}>
              Resolve…
            </PermissionButton>
          </>
        )}
        <Button onClick={onClose}>Close</Button>
      </DialogActions>
    </Dialog>
  );
}
