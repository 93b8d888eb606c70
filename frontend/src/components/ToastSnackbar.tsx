import { Alert, Snackbar } from '@mui/material';
import { useUi } from '@/lib/ui';

/** The oldest toast in a snackbar (loaded with the first toast: Toasts.tsx). */
export default function ToastSnackbar() {
  const toasts = useUi((s) => s.toasts);
  const dismiss = useUi((s) => s.dismiss);
  const t = toasts[0];
  return (
    <Snackbar
      key={t?.id}
      open={!!t}
      autoHideDuration={t?.severity === 'error' ? 8000 : 4000}
      onClose={(_, reason) => reason !== 'clickaway' && t && dismiss(t.id)}
      anchorOrigin={{ vertical: 'bottom', horizontal: 'center' }}
    >
      {t ? (
        <Alert severity={t.severity} variant="filled" onClose={() => dismiss(t.id)}>
          {t.message}
        </Alert>
      ) : undefined}
    </Snackbar>
  );
}
