import { useEffect, useRef } from 'react';
import Editor, { type OnMount } from '@monaco-editor/react';
import { useTheme } from '@mui/material';
import { monaco } from './monaco';

/** The sandbox's editor language for a sandbox language name. */
const editorLanguage = (name: string) =>
  ({ node: 'javascript', sh: 'shell', bash: 'shell' })[name] ?? name;

/** Monaco, bundled; Ctrl/Cmd+Enter runs. Loaded lazily by the Sandbox page. */
export default function CodeEditor({
  value,
  onChange,
  language,
  onRun,
}: {
  value: string;
  onChange: (code: string) => void;
  language: string;
  onRun: () => void;
}) {
  const theme = useTheme();
  const run = useRef(onRun);
  useEffect(() => {
    run.current = onRun;
  });
  const onMount: OnMount = (editor) => {
    editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, () => run.current());
  };
  return (
    <Editor
      height="320px"
      language={editorLanguage(language)}
      value={value}
      onChange={(v) => onChange(v ?? '')}
      onMount={onMount}
      theme={theme.palette.mode === 'dark' ? 'vs-dark' : 'vs'}
      options={{
        minimap: { enabled: false },
        fontSize: 14,
        scrollBeyondLastLine: false,
        automaticLayout: true,
        ariaLabel: 'Code',
        tabSize: 4,
      }}
      loading="Loading the editor…"
    />
  );
}
