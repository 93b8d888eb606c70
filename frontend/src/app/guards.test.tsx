import { Route, Routes, useLocation } from 'react-router-dom';
import { act, screen } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { perm } from '@/lib/permissions';
import { useSession } from '@/lib/session';
import { renderAt, signIn } from '../../test/render';
import { RequireAuth, RequirePermission } from './guards';

function Where() {
  const l = useLocation();
  return <p data-testid="where">{l.pathname + l.search}</p>;
}

const governance = (
  <Routes>
    <Route path="/login" element={<Where />} />
    <Route
      path="/governance"
      element={
        <RequireAuth>
          <p>the table</p>
        </RequireAuth>
      }
    />
  </Routes>
);

const tree = (
  <Routes>
    <Route path="/login" element={<Where />} />
    <Route path="/forbidden" element={<Where />} />
    <Route
      path="/audit"
      element={
        <RequireAuth>
          <RequirePermission permission={perm.readAudit}>
            <p>audit log</p>
          </RequirePermission>
        </RequireAuth>
      }
    />
  </Routes>
);

describe('route guards', () => {
  beforeEach(() => useSession.setState({ status: 'anonymous', user: null, expired: false }));

  it('sends a signed-out visitor to the login page with the way back', () => {
    renderAt(tree, '/audit?x=1');
    expect(screen.getByTestId('where').textContent).toBe('/login?next=%2Faudit%3Fx%3D1');
  });

  it('says the session expired when it did', () => {
    signIn('admin', [perm.readAudit]);
    useSession.getState().expire();
    renderAt(tree, '/audit');
    expect(screen.getByTestId('where').textContent).toBe('/login?next=%2Faudit&expired=1');
  });

  it('shows the page to a role with the permission', () => {
    signIn('auditor', [perm.readAudit]);
    renderAt(tree, '/audit');
    expect(screen.getByText('audit log')).toBeInTheDocument();
  });

  it('sends a role without the permission to the 403 page', () => {
    signIn('viewer', [perm.readBudget]);
    renderAt(tree, '/audit');
    expect(screen.getByTestId('where').textContent).toBe('/forbidden');
  });

  it('shows the page heading while the session is asked for, then the page', async () => {
    useSession.setState({ status: 'unknown', user: null, expired: false });
    renderAt(governance, '/governance');
    expect(screen.getByRole('heading', { level: 1, name: 'Governance' })).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'Loading page' })).toBeInTheDocument();
    act(() => signIn('admin', [perm.readGovernance]));
    expect(await screen.findByText('the table')).toBeInTheDocument();
  });

  it('sends a visitor to the login page once the session turns out to be missing', async () => {
    useSession.setState({ status: 'unknown', user: null, expired: false });
    renderAt(governance, '/governance');
    act(() => useSession.getState().signedOut());
    expect((await screen.findByTestId('where')).textContent).toBe('/login?next=%2Fgovernance');
  });
});
