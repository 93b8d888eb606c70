import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  Alert,
  Box,
  Chip,
  FormControl,
  InputLabel,
  MenuItem,
  Paper,
  Select,
  Skeleton,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { CodeBlock } from '@/components/CodeBlock';
import { errorText } from '@/components/ErrorAlert';
import { PermissionButton } from '@/components/PermissionButton';
import { fmtInt, fmtTime } from '@/lib/format';
import { perm } from '@/lib/permissions';
import { useExecute, type ExecuteResult } from '../api/execute';
import { useLanguages, type SandboxLimits } from '../api/languages';
import { useMyRuns, type SandboxRun } from '../api/runs';

// Monaco and its worker: only this page loads them, after the page itself.
const CodeEditor = lazy(() => import('./CodeEditor'));

const samples: Record<string, string> = {
  python: "import sys\nprint('hello from the sandbox')\nprint('to stderr', file=sys.stderr)\n",
  node: "console.log('hello from the sandbox');\n",
  ruby: "puts 'hello from the sandbox'\n",
  perl: 'print "hello from the sandbox\\n";\n',
  sh: 'echo hello from the sandbox\n',
  bash: 'echo hello from the sandbox\n',
};

interface Run {
  at: Date;
  language: string;
  result: ExecuteResult;
}

function Limits({
  limits,
  timeout,
  memory,
}: {
  limits: SandboxLimits;
  timeout: number;
  memory: number;
}) {
  return (
    <Typography variant="body2" color="text.secondary" role="note" data-testid="limits">
      This run: at most {timeout} s wall-clock (up to {limits.max_timeout} s), {memory} MB of memory
      (up to {limits.max_memory_mb} MB, no swap), {limits.cpus} CPU, {fmtInt(limits.pids_limit)}{' '}
      processes, network off; output cut at {fmtInt(limits.max_output_bytes)} bytes per stream.
    </Typography>
  );
}

function Result({ run }: { run: Run }) {
  const r = run.result;
  return (
    <Stack spacing={1.5} data-testid="run-result">
      <Stack direction="row" spacing={1} useFlexGap sx={{ flexWrap: 'wrap', alignItems: 'center' }}>
        <Chip
          label={`exit ${r.exit_code}`}
          color={r.exit_code === 0 ? 'success' : 'error'}
          data-testid="exit-code"
        />
        <Chip label={`${fmtInt(r.duration_ms)} ms`} variant="outlined" />
        {r.timed_out && <Chip label="timed out" color="warning" />}
        {r.truncated && <Chip label="output truncated" color="warning" />}
        {r.oom_killed && <Chip label="out of memory" color="error" />}
      </Stack>
      <Typography variant="subtitle2" component="h3">
        Standard output
      </Typography>
      <CodeBlock label="Standard output" testId="stdout" maxHeight={280}>
        {r.stdout || '(nothing)'}
      </CodeBlock>
      {r.stderr && (
        <>
          <Typography variant="subtitle2" component="h3">
            Standard error
          </Typography>
          <CodeBlock label="Standard error" testId="stderr" maxHeight={200} color="error.main">
            {r.stderr}
          </CodeBlock>
        </>
      )}
    </Stack>
  );
}

const outcomeText: Record<string, string> = {
  ok: 'ok',
  exit_nonzero: 'non-zero exit',
  timeout: 'timed out',
  oom: 'out of memory',
  error: 'error',
};

/** The person's recent runs as the audit log has them (every run, from any tab or device). */
function MyRuns({ runs }: { runs: ReturnType<typeof useMyRuns> }) {
  if (runs.isPending) return <Skeleton height={80} aria-label="Loading" />;
  if (runs.isError)
    return <Typography color="error">Could not read your runs: {errorText(runs.error)}</Typography>;
  if (!runs.data.runs.length)
    return <Typography variant="body2">No run of yours is recorded yet.</Typography>;
  return (
    <Box
      component="ol"
      sx={{ m: 0, pl: 3, display: 'grid', gap: 0.5 }}
      aria-label="Your recent runs"
      data-testid="my-runs"
    >
      {runs.data.runs.map((r: SandboxRun) => (
        <li key={r.id} data-run={r.id}>
          <Typography variant="body2" component="span">
            {fmtTime(r.at)} · {r.language} · {fmtInt(r.code_bytes)} bytes ·{' '}
            {r.exit_code === null || r.exit_code === undefined
              ? 'no exit code'
              : `exit ${r.exit_code}`}{' '}
            · {fmtInt(r.duration_ms)} ms ·{' '}
          </Typography>
          <Chip
            size="small"
            label={outcomeText[r.outcome] ?? r.outcome}
            color={r.outcome === 'ok' ? 'success' : 'warning'}
            variant="outlined"
          />
          {(r.truncated || r.timed_out || r.oom_killed) && (
            <Typography variant="caption" color="text.secondary">
              {' '}
              {[r.timed_out && 'timed out', r.oom_killed && 'OOM', r.truncated && 'output cut']
                .filter(Boolean)
                .join(', ')}
            </Typography>
          )}
          <Typography
            variant="caption"
            color="text.secondary"
            component="div"
            sx={{ fontFamily: 'monospace', overflowWrap: 'anywhere' }}
          >
            code SHA-256 {r.code_sha256.slice(0, 16)}… · audit event {r.position}
          </Typography>
        </li>
      ))}
    </Box>
  );
}

export default function SandboxPage() {
  const [params, setParams] = useSearchParams();
  const languages = useLanguages();
  const names = languages.data?.languages.map((l) => l.name) ?? [];
  const language = params.get('language') ?? names[0] ?? 'python';
  const limits = languages.data?.limits;
  const [code, setCode] = useState(() => samples[language] ?? '');
  const [timeout, setTimeoutSecs] = useState<number | null>(null);
  const [memory, setMemory] = useState<number | null>(null);
  const [runs, setRuns] = useState<Run[]>([]);
  const [awaiting, setAwaiting] = useState<{ since: number; newestBefore: string | null }>();
  const myRuns = useMyRuns(awaiting);
  const exec = useExecute();
  const t = timeout ?? limits?.default_timeout ?? 5;
  const m = memory ?? limits?.default_memory_mb ?? 128;
  const blocked = !limits
    ? 'The sandbox service is not reachable'
    : !code.trim()
      ? 'Write some code first'
      : t <= 0 || t > limits.max_timeout
        ? `The time limit is at most ${limits.max_timeout} s`
        : m < 16 || m > limits.max_memory_mb
          ? `Memory is 16 to ${limits.max_memory_mb} MB`
          : undefined;
  const run = useCallback(() => {
    if (blocked || exec.isPending) return;
    exec.mutate(
      { code, language, timeout: t, memory_mb: m },
      {
        onSuccess: (result) => {
          setRuns((rs) => [{ at: new Date(), language, result }, ...rs].slice(0, 10));
          // The run reaches the audit log a moment later: read the list until it shows.
          setAwaiting({ since: Date.now(), newestBefore: myRuns.data?.runs[0]?.id ?? null });
          void myRuns.refetch();
        },
      },
    );
  }, [blocked, exec, code, language, t, m, myRuns]);
  // Ctrl/Cmd+Enter anywhere on the page (the editor handles it inside itself).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key === 'Enter' && !e.defaultPrevented) run();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [run]);
  const setLanguage = (l: string) => {
    if (!code.trim() || code === samples[language]) setCode(samples[l] ?? '');
    setParams({ language: l }, { replace: true });
  };
  const last = runs[0];

  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Sandbox
      </Typography>
      {languages.isError && (
        <Alert severity="warning">
          The sandbox service is not reachable: {errorText(languages.error)}. Runs are off until it
          answers.
        </Alert>
      )}
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Stack spacing={2}>
          <Box
            sx={{
              display: 'grid',
              gap: 1.5,
              gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr 1fr auto' },
              alignItems: 'center',
            }}
          >
            <FormControl size="small">
              <InputLabel id="sandbox-language">Language</InputLabel>
              <Select
                labelId="sandbox-language"
                label="Language"
                value={names.includes(language) ? language : ''}
                onChange={(e) => setLanguage(e.target.value)}
                disabled={!names.length}
              >
                {names.map((n) => (
                  <MenuItem key={n} value={n}>
                    {n}
                  </MenuItem>
                ))}
              </Select>
            </FormControl>
            <TextField
              label="Time limit (s)"
              type="number"
              size="small"
              value={t}
              onChange={(e) => setTimeoutSecs(Number(e.target.value))}
              slotProps={{ htmlInput: { min: 0.1, max: limits?.max_timeout, step: 'any' } }}
            />
            <TextField
              label="Memory (MB)"
              type="number"
              size="small"
              value={m}
              onChange={(e) => setMemory(Number(e.target.value))}
              slotProps={{ htmlInput: { min: 16, max: limits?.max_memory_mb } }}
            />
            <span title={blocked}>
              <PermissionButton
                permission={perm.executeCode}
                variant="contained"
                onClick={run}
                disabled={!!blocked || exec.isPending}
              >
                {exec.isPending ? 'Running…' : 'Run'}
              </PermissionButton>
            </span>
          </Box>
          {limits && <Limits limits={limits} timeout={t} memory={m} />}
          <Box sx={{ border: 1, borderColor: 'divider', borderRadius: 1, overflow: 'hidden' }}>
            <Suspense
              fallback={<Skeleton variant="rectangular" height={320} aria-label="Loading" />}
            >
              <CodeEditor value={code} onChange={setCode} language={language} onRun={run} />
            </Suspense>
          </Box>
          <Typography variant="caption" color="text.secondary">
            Ctrl+Enter (⌘+Enter) runs. Every run is a fresh container and is recorded in the audit
            log under your name.
          </Typography>
          {exec.isError && <Alert severity="error">{errorText(exec.error)}</Alert>}
        </Stack>
      </Paper>
      {last && (
        <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
          <Typography variant="h6" component="h2" gutterBottom>
            Result
          </Typography>
          <Result run={last} />
        </Paper>
      )}
      <Paper sx={{ p: { xs: 1.5, sm: 2 } }}>
        <Typography variant="h6" component="h2" gutterBottom>
          Your recent runs
        </Typography>
        <Typography variant="body2" color="text.secondary" sx={{ mb: 1 }}>
          From the audit log: every run recorded under your name, from any tab or device (the output
          is not kept there).
        </Typography>
        <MyRuns runs={myRuns} />
      </Paper>
    </Stack>
  );
}
