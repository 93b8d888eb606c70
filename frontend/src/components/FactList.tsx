import { Box, Typography } from '@mui/material';

/** Name/value pairs as a description list (a detail dialog's facts). */
export function FactList({ facts, mono = [] }: { facts: [string, string][]; mono?: string[] }) {
  return (
    <Box
      component="dl"
      sx={{ display: 'grid', gridTemplateColumns: 'max-content 1fr', gap: 0.5, m: 0 }}
    >
      {facts.map(([k, v]) => (
        <Box key={k} sx={{ display: 'contents' }}>
          <Typography component="dt" sx={{ fontWeight: 600, pr: 2 }}>
            {k}
          </Typography>
          <Typography
            component="dd"
            sx={{
              m: 0,
              overflowWrap: 'anywhere',
              fontFamily: mono.includes(k) ? 'monospace' : undefined,
            }}
          >
            {v}
          </Typography>
        </Box>
      ))}
    </Box>
  );
}
