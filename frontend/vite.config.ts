/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import type { OutputBundle, OutputChunk } from 'rollup';
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
          if (files.has(file) || file === entry?.fileName) return;
          files.add(file);
          const chunk = bundle[file];
          if (chunk?.type === 'chunk') chunk.imports.forEach(add);
        };
        for (const stage of startupStages) {
          const chunk = chunks.find((c) => c.facadeModuleId?.endsWith(`/${stage}`));
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
