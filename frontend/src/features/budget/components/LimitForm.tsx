import { useState, type FormEvent } from 'react';
import { Box, TextField } from '@mui/material';
import { PermissionButton } from '@/components/PermissionButton';
import { serverFieldError, validate } from '@/lib/forms';
import { perm } from '@/lib/permissions';
import { useCan } from '@/lib/session';
import { toast } from '@/lib/ui';
import type { BudgetRef } from '../api/keys';
import { limitSchema, useSetLimit } from '../api/limit';

/** Sets the budget's limit (admin:budget); others see it disabled, saying why. */
export function LimitForm({ budget, current }: { budget: BudgetRef; current?: number }) {
  const can = useCan(perm.adminBudget);
  const [value, setValue] = useState('');
  const [error, setError] = useState<string>();
  const setLimit = useSetLimit(budget);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const r = validate(limitSchema, { total_tokens: value });
    setError(r.errors.total_tokens);
    if (!r.data) return;
    setLimit.mutate(r.data.total_tokens, {
      onSuccess: () => {
        toast(`Limit of ${budget.tenant_id}/${budget.project_id} set to ${r.data!.total_tokens}`);
        setValue('');
      },
      onError: (err) => {
        const f = serverFieldError(err, ['total_tokens']);
        if (f?.field) setError(f.message);
        else toast(`Could not set the limit: ${f?.message}`, 'error');
      },
    });
  };
  return (
    <Box
      component="form"
      onSubmit={submit}
      noValidate
      aria-label="Set the limit"
      sx={{ display: 'flex', gap: 1.5, alignItems: 'start', flexWrap: 'wrap' }}
    >
      <TextField
        size="small"
        label="New limit (tokens)"
        inputMode="numeric"
        value={value}
        placeholder={current !== undefined ? String(current) : undefined}
        onChange={(e) => setValue(e.target.value)}
        error={!!error}
        helperText={error}
        disabled={!can}
        sx={{ width: { xs: '100%', sm: 220 } }}
      />
      <PermissionButton
        permission={perm.adminBudget}
        type="submit"
        variant="outlined"
        disabled={setLimit.isPending}
      >
        Set limit
      </PermissionButton>
    </Box>
  );
}
