import { Box, Skeleton, Stack } from '@mui/material';

export function CardSkeleton({ height = 120 }: { height?: number }) {
  return <Skeleton variant="rounded" height={height} aria-label="Loading" />;
}

export function TableSkeleton({ rows = 8 }: { rows?: number }) {
  return (
    <Stack spacing={1} aria-label="Loading" role="progressbar">
      {Array.from({ length: rows }, (_, i) => (
        <Skeleton key={i} variant="rectangular" height={32} />
      ))}
    </Stack>
  );
}

export function PageSkeleton() {
  return (
    <Box sx={{ display: 'grid', gap: 2 }} role="progressbar" aria-label="Loading page">
      <Skeleton variant="text" width={240} height={40} />
      <Skeleton variant="rounded" height={140} />
      <Skeleton variant="rounded" height={280} />
    </Box>
  );
}
