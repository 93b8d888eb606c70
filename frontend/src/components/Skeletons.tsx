import { Box, Skeleton, Stack, Typography } from '@mui/material';

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

/**
 * A page while its session or its code is on the way. With `title`, the page's own heading,
 * where and as the page draws it: the heading (the largest text of every page) is painted
 * with the shell, before `/auth/me` and the page's chunk have arrived, and the page then puts
 * the same heading in the same place (no layout shift, no later "largest paint").
 */
export function PageSkeleton({ title }: { title?: string }) {
  return (
    <Stack spacing={3}>
      {title ? (
        <Typography variant="h4" component="h1">
          {title}
        </Typography>
      ) : (
        <Skeleton variant="text" width={240} height={42} />
      )}
      <Box sx={{ display: 'grid', gap: 2 }} role="progressbar" aria-label="Loading page">
        <Skeleton variant="rounded" height={140} />
        <Skeleton variant="rounded" height={280} />
      </Box>
    </Stack>
  );
}
