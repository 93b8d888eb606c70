import { Alert, Typography } from '@mui/material';

/** The operations pages of part 2: routed and guarded now, built by the next issue. */
export function LaterPage({ title }: { title: string }) {
  return (
    <>
      <Typography variant="h4" component="h1" gutterBottom>
        {title}
      </Typography>
      <Alert severity="info">
        This page comes with part 2 of the dashboard. Until then its API is described at{' '}
        <a href="/docs/">/docs/</a>.
      </Alert>
    </>
  );
}
