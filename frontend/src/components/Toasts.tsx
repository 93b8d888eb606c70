import { lazy, Suspense, useEffect, useState } from 'react';
import { useUi } from '@/lib/ui';

const ToastSnackbar = lazy(() => import('./ToastSnackbar'));

/**
 * Shows the oldest toast; success and failure messages of actions. The snackbar's code loads
 * with the first toast, not with the app (and stays, so later toasts animate out).
 */
export function Toasts() {
  const any = useUi((s) => s.toasts.length > 0);
  const [needed, setNeeded] = useState(false);
  useEffect(() => {
    if (any) setNeeded(true);
  }, [any]);
  return needed || any ? (
    <Suspense fallback={null}>
      <ToastSnackbar />
    </Suspense>
  ) : null;
}
