import { Alert } from '@mui/material';
import { ApiError } from '@/lib/http';

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return 'Something went wrong';
}

export function ErrorAlert({ error, what }: { error: unknown; what: string }) {
  return (
    <Alert severity="error" role="alert">
      Could not load {what}: {errorText(error)}
    </Alert>
  );
}
