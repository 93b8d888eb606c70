import { useMemo } from 'react';
import { Link as RouterLink, useSearchParams } from 'react-router-dom';
import { Link, Paper, Stack, Typography } from '@mui/material';
import { paths } from '@/config/paths';
import { EmptyState } from '@/components/EmptyState';
import type { BudgetRef } from '../api/keys';
import { useBudgetLive } from '../api/live';
import { budgetRefSchema } from '../api/request';
import { BudgetPicker } from './BudgetPicker';
import { ReservationForm } from './ReservationForm';
import { ReservationsTable } from './ReservationsTable';
import { StateCard } from './StateCard';
import { UsagePanel } from './UsagePanel';

export default function BudgetPage() {
  const [params, setParams] = useSearchParams();
  const tenant = params.get('tenant') ?? '';
  const project = params.get('project') ?? '';
  const budget = useMemo<BudgetRef | null>(() => {
    const r = budgetRefSchema.safeParse({ tenant_id: tenant, project_id: project });
    return r.success ? r.data : null;
  }, [tenant, project]);
  useBudgetLive(budget);

  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Budget
      </Typography>
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <BudgetPicker
          key={`${tenant}/${project}`}
          value={budget}
          onPick={(b) => setParams({ tenant: b.tenant_id, project: b.project_id })}
        />
      </Paper>
      {!budget ? (
        <EmptyState title="Choose a budget">
          Enter a tenant and a project, or pick one from{' '}
          <Link component={RouterLink} to={paths.governance}>
            Governance
          </Link>
          .
        </EmptyState>
      ) : (
        <>
          <StateCard budget={budget} />
          <ReservationForm budget={budget} />
          <ReservationsTable budget={budget} />
          <UsagePanel budget={budget} />
        </>
      )}
    </Stack>
  );
}
