// Monaco from the app's own bundle (no CDN: the CSP allows scripts and workers from 'self'
// only): the editor API, the tokenizers of the sandbox's languages (monaco-editor 0.55's
// language contributions bring the editor's features with them) and its one web worker, the
// editor worker (no TypeScript/JSON/CSS language services). Imported by CodeEditor only, so
// it loads with the Sandbox page and never before.
import { loader } from '@monaco-editor/react';
import * as monaco from 'monaco-editor/esm/vs/editor/editor.api.js';
import 'monaco-editor/esm/vs/basic-languages/python/python.contribution.js';
import 'monaco-editor/esm/vs/basic-languages/javascript/javascript.contribution.js';
import 'monaco-editor/esm/vs/basic-languages/ruby/ruby.contribution.js';
import 'monaco-editor/esm/vs/basic-languages/perl/perl.contribution.js';
import 'monaco-editor/esm/vs/basic-languages/shell/shell.contribution.js';
import EditorWorker from 'monaco-editor/esm/vs/editor/editor.worker.js?worker';

self.MonacoEnvironment = { getWorker: () => new EditorWorker() };
loader.config({ monaco });

export { monaco };
