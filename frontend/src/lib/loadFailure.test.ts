import { describe, expect, it } from 'vitest';
import { isChunkLoadError, loadFailureText, showStartFailure } from './loadFailure';

/** `showStartFailure` logs the error: kept out of the test's output. */
function showQuietly(root: HTMLElement, error: unknown) {
  const log = console.error;
  console.error = () => {};
  try {
    showStartFailure(root, error);
  } finally {
    console.error = log;
  }
}

describe('a failed load of a chunk', () => {
  it("is recognised by the browsers' and Vite's messages, and nothing else", () => {
    for (const message of [
      'Failed to fetch dynamically imported module: http://x/assets/App-abc.js',
      'error loading dynamically imported module: http://x/assets/App-abc.js',
      'Importing a module script failed.',
      'Unable to preload CSS for /assets/x.css',
    ])
      expect(isChunkLoadError(new Error(message))).toBe(true);
    expect(isChunkLoadError(new Error('x is undefined'))).toBe(false);
    expect(isChunkLoadError('Failed to fetch dynamically imported module')).toBe(false);
  });

  it('replaces the root with an alert whose button reloads the page', () => {
    const root = document.createElement('div');
    root.append(document.createElement('span'));
    showQuietly(root, new Error('Failed to fetch dynamically imported module: /a.js'));
    const alert = root.querySelector('[role="alert"]');
    expect(root.children).toHaveLength(1);
    expect(alert?.querySelector('h1')?.textContent).toBe(loadFailureText.title);
    expect(alert?.querySelector('p')?.textContent).toBe(loadFailureText.body);
    expect(alert?.querySelector('button')?.textContent).toBe(loadFailureText.action);
  });

  it('names an error that is not a failed load', () => {
    const root = document.createElement('div');
    showQuietly(root, new Error('theme broke'));
    expect(root.querySelector('p')?.textContent).toContain('(theme broke)');
  });
});
