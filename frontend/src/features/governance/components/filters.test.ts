import { describe, expect, it } from 'vitest';
import { fetchStatusPage, pagesFor, PAGE } from '../api/status';
import { fakeFetch } from '../../../../test/render';
import { readParams, writeParams } from './filters';

describe('governance view', () => {
  it('lives in the URL and reads back the same', () => {
    const view = readParams(new URLSearchParams('q=acme&status=warning&sort=used&dir=desc'));
    expect(view).toEqual({ q: 'acme', status: 'warning', sort: 'used', dir: 'desc' });
    expect(writeParams(view).toString()).toBe('q=acme&status=warning&sort=used&dir=desc');
    // Unknown values fall back to the defaults, which the URL leaves out.
    const plain = readParams(new URLSearchParams('status=sleepy&sort=colour&dir=up'));
    expect(plain).toEqual({ q: '', status: undefined, sort: 'name', dir: 'asc' });
    expect(writeParams(plain).toString()).toBe('');
  });

  it('reads the pages on screen, the next two, the one before and the first', () => {
    expect(pagesFor(0, 20)).toEqual([0, 100, 200]);
    expect(pagesFor(450, 470)).toEqual([0, 300, 400, 500, 600]);
    expect(PAGE).toBe(100);
  });

  it('asks the server to search, sort and wait for the newest event', async () => {
    const calls = fakeFetch([{ status: 200, body: { rows: [] } }]);
    await fetchStatusPage({ q: ' Acme ', status: 'ok', sort: 'utilisation', dir: 'desc' }, 200, 42);
    const url = new URL(calls[0]!.url, 'http://x');
    expect(url.pathname).toBe('/governance/status');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      q: 'Acme',
      status: 'ok',
      sort: 'utilisation',
      dir: 'desc',
      limit: '100',
      offset: '200',
      min_position: '42',
    });
  });
});
