import { useState, type FormEvent } from 'react';
import { Box, Button, TextField } from '@mui/material';
import { validate, type FieldErrors } from '@/lib/forms';
import { budgetRefSchema } from '../api/request';
import type { BudgetRef } from '../api/keys';

/** Which budget the page shows (kept in the URL). */
export function BudgetPicker({
  value,
  onPick,
}: {
  value: BudgetRef | null;
  onPick: (b: BudgetRef) => void;
}) {
  const [v, setV] = useState({
    tenant_id: value?.tenant_id ?? '',
    project_id: value?.project_id ?? '',
  });
  const [errors, setErrors] = useState<FieldErrors<BudgetRef>>({});
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const r = validate(budgetRefSchema, v);
    setErrors(r.errors);
    if (r.data) onPick(r.data);
  };
  return (
    <Box
      component="form"
      onSubmit={submit}
      noValidate
      aria-label="Choose a budget"
      sx={{
        display: 'grid',
        gap: 1.5,
        gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr auto' },
        alignItems: 'start',
      }}
    >
      <TextField
        size="small"
        label="Tenant"
        value={v.tenant_id}
        onChange={(e) => setV({ ...v, tenant_id: e.target.value })}
        error={!!errors.tenant_id}
        helperText={errors.tenant_id}
      />
      <TextField
        size="small"
        label="Project"
        value={v.project_id}
        onChange={(e) => setV({ ...v, project_id: e.target.value })}
        error={!!errors.project_id}
        helperText={errors.project_id}
      />
      <Button type="submit" variant="outlined">
        Show budget
      </Button>
    </Box>
  );
}
