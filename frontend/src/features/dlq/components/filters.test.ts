import { describe, expect, it } from 'vitest';
import { readDlqParams, serverFilter, writeDlqParams } from './filters';

describe('dead-letter filters in the URL', () => {
  it('round-trips and leaves defaults out', () => {
    const p = readDlqParams(new URLSearchParams('status=all&subject=a.b&error=boom&view=groups'));
    expect(p).toMatchObject({ view: 'groups', status: 'all', subject: 'a.b', error: 'boom' });
    expect(writeDlqParams(p).toString()).toBe('view=groups&status=all&subject=a.b&error=boom');
    expect(writeDlqParams(readDlqParams(new URLSearchParams())).toString()).toBe('');
  });

  it('turns the view into the server filter', () => {
    const f = serverFilter(readDlqParams(new URLSearchParams('since=2026-01-02T03:04')));
    expect(f.resolved).toBe(false);
    expect(f.since).toBe(new Date('2026-01-02T03:04').toISOString());
    expect(serverFilter(readDlqParams(new URLSearchParams('status=all'))).resolved).toBe(undefined);
    expect(serverFilter(readDlqParams(new URLSearchParams('since=nonsense'))).since).toBe(
      undefined,
    );
  });
});
