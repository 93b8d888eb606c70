/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import type { GetModuleInfo, ManualChunkMeta, OutputBundle, OutputChunk } from 'rollup';
import react from '@vitejs/plugin-react';
import { startupStages } from './scripts/startup-stages.mjs';

// `npm run dev` proxies the API to a running `controlplane serve` (CP_API, default :8000).
// The gateway refuses cookie-authenticated WebSocket upgrades from another origin, so the
// proxy presents the API's own origin.
const api = process.env.CP_API ?? 'http://127.0.0.1:8000';
const apiPaths = [
  '/auth',
  '/budget',
  '/governance',
  '/stats',
  '/system',
  '/readyz',
  '/openapi.json',
  '/dlq',
  '/circuit-breakers',
  '/audit',
  '/sandbox',
  '/users',
];
const proxy = Object.fromEntries(
  apiPaths.map((p) => [
    p,
    {
      target: api,
      changeOrigin: true,
      // A browser navigation to an app route (e.g. /budget) is the app's, not the API's.
      bypass: (req: { headers: { accept?: string } }) =>
        req.headers.accept?.includes('text/html') ? '/index.html' : undefined,
    },
  ]),
);

const backgroundChunks = /(^|\/)(EntryDialog|RedriveDialog|RedriveProgress)-[^/]*\.js$/;

/**
 * main.tsx imports its start-up stages one after another (each is evaluated in a task of its
 * own); their chunks, and what those import, are fetched from the start instead, by a
 * <link rel="modulepreload"> each in index.html (fetched and compiled, not run).
 */
function preloadStartupStages(): Plugin {
  return {
    name: 'preload-startup-stages',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(_html, ctx) {
        const bundle: OutputBundle = ctx.bundle ?? {};
        const chunks = Object.values(bundle).filter((c): c is OutputChunk => c.type === 'chunk');
        const entry = chunks.find((c) => c.isEntry);
        const files = new Set<string>();
        const add = (file: string) => {
          // (What the entry imports, Vite preloads already.)
          if (files.has(file) || file === entry?.fileName || entry?.imports.includes(file)) return;
          files.add(file);
          const chunk = bundle[file];
          if (chunk?.type === 'chunk') chunk.imports.forEach(add);
        };
        for (const stage of startupStages) {
          const chunk = chunks.find((c) => c.moduleIds.some((id) => id.endsWith(`/${stage}`)));
          if (!chunk) throw new Error(`start-up stage ${stage} is in no chunk`);
          add(chunk.fileName);
        }
        return [...files].map((file) => ({
          tag: 'link',
          attrs: { rel: 'modulepreload', crossorigin: true, href: `/${file}` },
          injectTo: 'head' as const,
        }));
      },
    },
  };
}

/**
 * Each start-up stage in one chunk with everything it imports that the entry does not (the
 * modules it shares with the pages included: it always loads first). Left to Rollup, the app
 * stage came as eight chunks, and Lighthouse's simulated phone network took 0.4-0.5 s longer to
 * the first paint for the requests queued behind each other.
 */
const muiIndex = /\/@mui\/material\/(esm\/)?index\.js$/;

function startupStageChunks(): (id: string, meta: ManualChunkMeta) => string | undefined {
  let stageOf: Map<string, string> | undefined;
  const closure = (root: string, info: GetModuleInfo, into: Set<string>) => {
    const todo = [root];
    while (todo.length) {
      const id = todo.pop()!;
      if (into.has(id)) continue;
      into.add(id);
      for (const dep of info(id)?.importedIds ?? []) {
        // MUI's index imports every component: through it a stage would take in every
        // component any page uses (the app stage carried Dialog, Tabs, Table, Select...).
        if (muiIndex.test(dep))
          throw new Error(
            `${id} is loaded at start-up and imports @mui/material's index: import each ` +
              `component from its own path (@mui/material/Button)`,
          );
        todo.push(dep);
      }
    }
    return into;
  };
  return (id, { getModuleInfo, getModuleIds }) => {
    if (!stageOf) {
      stageOf = new Map();
      const ids = [...getModuleIds()];
      const root = (suffix: string) => ids.find((m) => m.endsWith(`/${suffix}`));
      const entry = root('src/main.tsx');
      // The entry's own imports in one chunk too: otherwise Rollup puts those the stages also
      // import into a stage's chunk, and the entry would import (and run) that stage at once.
      const taken = entry ? closure(entry, getModuleInfo, new Set()) : new Set<string>();
      for (const m of taken) if (m !== entry) stageOf.set(m, 'start');
      for (const stage of startupStages) {
        const start = root(stage);
        if (!start) continue;
        const name = stage
          .split('/')
          .pop()!
          .replace(/\.tsx?$/, '');
        for (const m of closure(start, getModuleInfo, new Set())) {
          if (taken.has(m)) continue;
          taken.add(m);
          stageOf.set(m, name);
        }
      }
    }
    return stageOf.get(id);
  };
}

export default defineConfig({
  plugins: [react(), preloadStartupStages()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  server: {
    proxy: {
      ...proxy,
      '/ws': {
        target: api.replace(/^http/, 'ws'),
        ws: true,
        changeOrigin: true,
        headers: { origin: api },
      },
    },
  },
  build: {
    rollupOptions: { output: { manualChunks: startupStageChunks() } },
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    manifest: true,
    modulePreload: {
      // The Dead letters page's dialogs load in the background once the page is up
      // (DlqPage.tsx): no <link rel="modulepreload"> per module they import (appending some
      // thirty links was one task of 20-25 ms on a busy machine, a long task on a phone); the
      // browser fetches their imports as it reads them. Their styles still load first.
      resolveDependencies: (file, deps) =>
        backgroundChunks.test(file) ? deps.filter((d) => d.endsWith('.css')) : deps,
    },
    // Monaco's chunk (Sandbox page) is ~3.7 MB; scripts/check-budget.mjs is the real gate.
    chunkSizeWarningLimit: 4000,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}'],
  },
});
