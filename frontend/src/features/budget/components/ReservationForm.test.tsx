import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { perm } from '@/lib/permissions';
import { fakeFetch, renderAt, signIn } from '../../../../test/render';
import { ReservationForm } from './ReservationForm';

const budget = { tenant_id: 'acme', project_id: 'web' };

describe('ReservationForm', () => {
  it('checks the fields before sending anything', async () => {
    signIn('operator', [perm.writeBudget]);
    const calls = fakeFetch([]);
    renderAt(<ReservationForm budget={budget} />);
    await userEvent.type(screen.getByLabelText('Estimated tokens'), '-3');
    await userEvent.click(screen.getByRole('button', { name: 'Reserve' }));
    expect(screen.getAllByText('Required')).toHaveLength(2);
    expect(screen.getByText('More than 0')).toBeInTheDocument();
    expect(calls).toHaveLength(0);
  });

  it('shows the API 400 at the field it names, and sends the CSRF header', async () => {
    signIn('operator', [perm.writeBudget]);
    const calls = fakeFetch([
      {
        status: 400,
        body: {
          error: { code: 'invalid_request', message: 'model is not allowed', field: 'model' },
        },
      },
    ]);
    renderAt(<ReservationForm budget={budget} />);
    await userEvent.type(screen.getByLabelText('Task id'), 't1');
    await userEvent.type(screen.getByLabelText('Model'), 'nope');
    await userEvent.type(screen.getByLabelText('Estimated tokens'), '10');
    await userEvent.click(screen.getByRole('button', { name: 'Reserve' }));
    await waitFor(() => expect(screen.getByText('model is not allowed')).toBeInTheDocument());
    expect(screen.getByLabelText('Model')).toHaveAttribute('aria-invalid', 'true');
    const headers = calls[0]!.init.headers as Record<string, string>;
    expect(headers['X-Requested-With']).toBe('XMLHttpRequest');
    expect(JSON.parse(String(calls[0]!.init.body))).toMatchObject({
      tenant_id: 'acme',
      project_id: 'web',
      task_id: 't1',
      estimated_tokens: 10,
      ttl_seconds: 600,
    });
  });

  it('is disabled, naming the missing permission, for a viewer', async () => {
    signIn('viewer', [perm.readBudget]);
    renderAt(<ReservationForm budget={budget} />);
    expect(screen.getByRole('button', { name: 'Reserve' })).toBeDisabled();
    expect(screen.getByLabelText('Reserve: needs the write:budget permission')).toBeInTheDocument();
  });
});
