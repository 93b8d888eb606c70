/**
 * A failed load of one of the app's own chunks: the network failed, or a deploy replaced the
 * hashed files under an open tab. Trying the import again does not help (the browser, and
 * React.lazy, keep the failed result); only a reload does. The messages are Chromium's,
 * Firefox's and Safari's, and Vite's when a chunk's preload fails.
 */
export function isChunkLoadError(error: unknown): boolean {
  return (
    error instanceof Error &&
    /dynamically imported module|Importing a module script failed|Unable to preload/i.test(
      error.message,
    )
  );
}

export const loadFailureText = {
  title: 'The dashboard could not load',
  body: 'A part of it did not arrive: the network failed, or a new version was deployed since this tab opened. Reloading the page loads it again.',
  action: 'Reload',
};

/**
 * The start-up failed before React rendered anything: a message and a Reload button in plain
 * DOM (React and MUI may be what did not load), styled by index.html's inline CSS.
 */
export function showStartFailure(root: HTMLElement, error: unknown): void {
  console.error('the dashboard failed to start', error);
  const box = document.createElement('div');
  box.className = 'start-failed';
  box.setAttribute('role', 'alert');
  const title = document.createElement('h1');
  title.className = 'page-title';
  title.textContent = loadFailureText.title;
  const body = document.createElement('p');
  body.textContent = isChunkLoadError(error)
    ? loadFailureText.body
    : `${loadFailureText.body} (${error instanceof Error ? error.message : String(error)})`;
  const reload = document.createElement('button');
  reload.type = 'button';
  reload.className = 'text-btn';
  reload.textContent = loadFailureText.action;
  reload.addEventListener('click', () => window.location.reload());
  box.append(title, body, reload);
  root.replaceChildren(box);
}
