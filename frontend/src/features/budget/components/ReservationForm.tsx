import { useState, type FormEvent } from 'react';
import { Alert, Box, Paper, TextField, Typography } from '@mui/material';
import { PermissionButton } from '@/components/PermissionButton';
import { serverFieldError, validate, type FieldErrors } from '@/lib/forms';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import { toast } from '@/lib/ui';
import type { BudgetRef } from '../api/keys';
import { reserveSchema, useReserve, type ReserveInput } from '../api/request';

const fields = ['task_id', 'model', 'estimated_tokens', 'ttl_seconds'] as const;
type Values = Record<(typeof fields)[number], string>;
const labels: Values = {
  task_id: 'Task id',
  model: 'Model',
  estimated_tokens: 'Estimated tokens',
  ttl_seconds: 'Time to live (seconds)',
};

/** Reserves tokens: zod checks it first, and the API's 400 is shown at the field it names. */
export function ReservationForm({ budget }: { budget: BudgetRef }) {
  const can = useCan(perm.writeBudget);
  const [values, setValues] = useState<Values>({
    task_id: '',
    model: '',
    estimated_tokens: '',
    ttl_seconds: '600',
  });
  const [errors, setErrors] = useState<FieldErrors<ReserveInput>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const reserve = useReserve(budget);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setFormError(null);
    const r = validate(reserveSchema, values);
    setErrors(r.errors);
    if (!r.data) return;
    reserve.mutate(r.data, {
      onSuccess: (answer) => {
        if (answer.approved) {
          toast(
            `Reserved ${answer.allocated ?? r.data!.estimated_tokens} tokens for ${r.data!.task_id}`,
          );
          setValues((v) => ({ ...v, task_id: '' }));
        } else {
          const reason =
            answer.reason === 'no_budget'
              ? 'this budget has no limit'
              : 'not enough tokens are left';
          setFormError(`Denied: ${reason}.`);
          toast(`Reservation denied: ${reason}`, 'warning');
        }
      },
      onError: (err) => {
        const f = serverFieldError<ReserveInput>(err, fields);
        if (f?.field) setErrors({ [f.field]: f.message });
        else setFormError(f?.message ?? 'Failed');
        toast(`Reservation failed: ${f?.message}`, 'error');
      },
    });
  };

  return (
    <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
      <Typography variant="h6" component="h2" gutterBottom>
        Reserve tokens
      </Typography>
      <Box
        component="form"
        onSubmit={submit}
        noValidate
        aria-label="Reserve tokens"
        sx={{ display: 'grid', gap: 1.5, gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr' } }}
      >
        {formError && (
          <Alert severity="warning" sx={{ gridColumn: '1 / -1' }}>
            {formError}
          </Alert>
        )}
        {fields.map((f) => (
          <TextField
            key={f}
            size="small"
            label={labels[f]}
            name={f}
            value={values[f]}
            inputMode={f === 'estimated_tokens' || f === 'ttl_seconds' ? 'numeric' : undefined}
            onChange={(e) => setValues((v) => ({ ...v, [f]: e.target.value }))}
            error={!!errors[f]}
            helperText={errors[f]}
            disabled={!can}
          />
        ))}
        <Box sx={{ gridColumn: '1 / -1' }}>
          <PermissionButton
            permission={perm.writeBudget}
            type="submit"
            variant="contained"
            disabled={reserve.isPending}
          >
            Reserve
          </PermissionButton>
        </Box>
      </Box>
    </Paper>
  );
}
