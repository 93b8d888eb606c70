import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

// Imports flow shared (lib, components, config) -> features -> app, never feature -> feature
// (STYLE.md 12). Shared code is imported as `@/...`; a feature reaches its own files relatively.
const restrict = (regex, message) => ['error', { patterns: [{ regex, message }] }];

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'e2e-artifacts', 'src/lib/api/schema.ts'] },
  {
    files: ['**/*.{ts,tsx}'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: { ...reactHooks.configs.recommended.rules },
  },
  {
    files: ['src/lib/**', 'src/components/**', 'src/config/**'],
    rules: {
      'no-restricted-imports': restrict('^@/(features|app)/', 'shared code imports no feature'),
    },
  },
  {
    files: ['src/features/**'],
    rules: {
      'no-restricted-imports': restrict(
        '^(@/features/|@/app/|\\.\\./\\.\\./)',
        'a feature imports lib, components and config (as @/...) and its own files only',
      ),
    },
  },
  {
    files: ['**/*.test.{ts,tsx}'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['**/*.{js,mjs}'],
    extends: [js.configs.recommended],
    // e2e and bench scripts run in Node and hand functions to the page.
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
