import { useEffect, useMemo, useState } from 'react';
import { Alert, Box, Button, Stack, TextField, Typography } from '@mui/material';
import { CodeBlock } from '@/components/CodeBlock';
import { FactList } from '@/components/FactList';
import { PermissionButton } from '@/components/PermissionButton';
import { errorText } from '@/components/ErrorAlert';
import { fmtInt } from '@/lib/format';
import { ApiError } from '@/lib/http';
import { perm } from '@/lib/permissions';
import { toast } from '@/lib/ui';
import type { DlqEntryDetail } from '../api/entry';
import { useRequeueEdited } from '../api/requeueEdited';
import { base64Of, bytesOf, bytesOfBase64, isJson, sha256Hex, textOf, utf8 } from './payload';

/** The server's limit for a payload (MAX_PAYLOAD_BYTES), as for a capture. */
const MAX_BYTES = 1024 * 1024;

/** What a requeue sends today: the latest edit, else the captured payload. */
function current(entry: DlqEntryDetail) {
  return entry.edited
    ? { encoding: entry.edited.encoding, base64: entry.edited.payload_base64 }
    : { encoding: entry.encoding, base64: entry.payload_base64 ?? '' };
}

function useSha256(bytes: Uint8Array | null) {
  const [hash, setHash] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setHash(null);
    if (bytes) void sha256Hex(bytes).then((h) => live && setHash(h));
    return () => {
      live = false;
    };
  }, [bytes]);
  return hash;
}

const short = (hash: string | null) => (hash ? `${hash.slice(0, 16)}…` : 'not computed here');

/**
 * Edit, then requeue: the operator corrects the payload (as text, or as base64 when the bytes
 * are binary), reviews what will be sent (sizes and SHA-256 of both) and confirms. The server
 * publishes the edit with the entry's headers, records both hashes and who edited, and keeps
 * the captured payload readable.
 */
export function EditRequeueForm({
  entry,
  onCancel,
  onDone,
}: {
  entry: DlqEntryDetail;
  onCancel: () => void;
  onDone: () => void;
}) {
  const now = current(entry);
  const mode: 'text' | 'base64' = now.encoding === 'base64' ? 'base64' : 'text';
  const nowBytes = useMemo(() => bytesOf(now.base64), [now.base64]);
  const [draft, setDraft] = useState(() => (mode === 'text' ? textOf(nowBytes) : now.base64));
  const [step, setStep] = useState<'edit' | 'confirm'>('edit');
  const [note, setNote] = useState('');
  const send = useRequeueEdited(entry.id);

  const edited = useMemo(
    () => (mode === 'text' ? utf8(draft) : bytesOfBase64(draft)),
    [draft, mode],
  );
  const unchanged =
    !!edited && edited.length === nowBytes.length && edited.every((b, i) => b === nowBytes[i]);
  const problem =
    edited === null
      ? 'This is not base64.'
      : edited.length > MAX_BYTES
        ? `At most ${fmtInt(MAX_BYTES)} bytes (this is ${fmtInt(edited.length)}).`
        : unchanged
          ? 'Nothing is edited yet: this is the payload a requeue sends.'
          : null;
  const jsonBefore = now.encoding === 'json';
  const hint =
    mode === 'text' && jsonBefore && !isJson(draft)
      ? 'Not valid JSON any more: it will be sent as this text.'
      : null;
  const serverField = send.error instanceof ApiError ? send.error.field : undefined;

  const originalHash = useSha256(nowBytes);
  const editedHash = useSha256(step === 'confirm' ? edited : null);

  const submit = () =>
    send.mutate(
      {
        payload: mode === 'text' ? draft : base64Of(edited!),
        encoding: mode === 'text' ? 'text' : 'base64',
        note: note.trim() || undefined,
      },
      {
        onSuccess: () => {
          toast('Edited payload requeued', 'success');
          onDone();
        },
        onError: (e) => {
          if (e instanceof ApiError && e.field === 'payload') setStep('edit');
        },
      },
    );

  if (step === 'edit') {
    return (
      <Stack spacing={1.5} component="section" aria-label="Edit the payload">
        <Typography variant="subtitle1" component="h3" sx={{ fontWeight: 600 }}>
          Edit, then requeue
        </Typography>
        <Typography variant="body2" color="text.secondary">
          {entry.edited ? 'Starting from the last edit. ' : ''}The captured payload stays in the
          entry; the edited one is published on {entry.original_subject} with the same headers.
        </Typography>
        <TextField
          label={mode === 'text' ? 'Edited payload' : 'Edited payload (base64)'}
          multiline
          minRows={6}
          maxRows={18}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          error={!!problem && !unchanged}
          helperText={
            (serverField === 'payload' && send.error ? errorText(send.error) : null) ??
            problem ??
            hint ??
            `${fmtInt(edited?.length ?? 0)} bytes`
          }
          slotProps={{
            htmlInput: {
              spellCheck: false,
              style: { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' },
            },
          }}
        />
        <Stack direction="row" spacing={1} sx={{ flexWrap: 'wrap', rowGap: 1 }}>
          <Button
            variant="contained"
            disabled={!!problem}
            onClick={() => {
              send.reset();
              setStep('confirm');
            }}
          >
            Review the edit…
          </Button>
          {mode === 'text' && isJson(draft) && (
            <Button onClick={() => setDraft(JSON.stringify(JSON.parse(draft), null, 2))}>
              Format JSON
            </Button>
          )}
          <Button onClick={onCancel}>Cancel</Button>
        </Stack>
      </Stack>
    );
  }

  return (
    <Stack
      spacing={1.5}
      component="form"
      aria-label="Confirm the edited requeue"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <Typography variant="subtitle1" component="h3" sx={{ fontWeight: 600 }}>
        Requeue the edited payload?
      </Typography>
      <FactList
        facts={[
          ['Subject', entry.original_subject],
          [
            entry.edited ? 'Now (last edit)' : 'Captured',
            `${fmtInt(nowBytes.length)} bytes · SHA-256 ${short(originalHash)}`,
          ],
          ['Edited', `${fmtInt(edited!.length)} bytes · SHA-256 ${short(editedHash)}`],
        ]}
      />
      <CodeBlock label="Edited payload to send" testId="edited-payload" maxHeight={200}>
        {mode === 'text' ? draft : draft.replace(/\s+/g, '')}
      </CodeBlock>
      <TextField
        label="Note"
        size="small"
        value={note}
        onChange={(e) => setNote(e.target.value)}
        slotProps={{ htmlInput: { maxLength: 1000 } }}
        error={serverField === 'note'}
        helperText={
          serverField === 'note'
            ? errorText(send.error)
            : 'What was wrong; kept in the history with the edit and who made it.'
        }
      />
      {send.isError && !serverField && <Alert severity="error">{errorText(send.error)}</Alert>}
      <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap' }}>
        <PermissionButton
          permission={perm.writeDlq}
          type="submit"
          variant="contained"
          color="warning"
          disabled={send.isPending}
        >
          Requeue edited payload
        </PermissionButton>
        <Button onClick={() => setStep('edit')} disabled={send.isPending}>
          Back to editing
        </Button>
      </Box>
    </Stack>
  );
}
