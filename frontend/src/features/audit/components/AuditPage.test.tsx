import { describe, expect, it, vi } from 'vitest';
import { createElement, forwardRef } from 'react';
import { render, screen, within } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { QueryClientProvider, type InfiniteData } from '@tanstack/react-query';
import { createQueryClient } from '@/lib/queryClient';
import { LiveProvider } from '@/lib/live/LiveProvider';
import { fakeFetch } from '../../../../test/render';
import { auditRow, type AuditRowsPage } from '../api/events';
import { auditKeys } from '../api/keys';
import AuditPage from './AuditPage';

const renders = vi.hoisted(() => ({ textFields: 0 }));

// Counts the renders of the search form's text fields.
vi.mock('@mui/material', async (importOriginal) => {
  const mui = await importOriginal<typeof import('@mui/material')>();
  const TextField = forwardRef<HTMLDivElement, Record<string, unknown>>((props, ref) => {
    renders.textFields += 1;
    return createElement(mui.TextField, { ...props, ref });
  });
  return { ...mui, TextField };
});

const event = (position: number) => ({
  global_position: position,
  transaction_id: String(position),
  aggregate_type: 'Budget',
  aggregate_id: 'acme/web',
  sequence: position,
  event_type: 'TokensReserved',
  event_version: '1',
  payload: {},
  metadata: {},
  recorded_at: '2026-12-03T08:00:00Z',
});

/** The page at `url`, without a socket; its query client. */
function renderAt(url: string) {
  const qc = createQueryClient();
  render(
    <QueryClientProvider client={qc}>
      <LiveProvider enabled={false}>
        <MemoryRouter initialEntries={[url]}>
          <AuditPage />
        </MemoryRouter>
      </LiveProvider>
    </QueryClientProvider>,
  );
  return qc;
}

describe('the Audit log page', () => {
  it('does not render its search form again when the live tail appends events', async () => {
    fakeFetch([
      {
        status: 200,
        body: { events: [event(1), event(2)], next_after_position: null, read_position: 2 },
      },
    ]);
    const qc = renderAt('/audit?live=1');
    await screen.findByText(/2 events loaded/);
    const before = renders.textFields;
    expect(before).toBeGreaterThanOrEqual(6);
    // What the tail does with an event: the page that follows the last row, appended.
    qc.setQueryData<InfiniteData<AuditRowsPage, number>>(auditKeys.events({}), (old) =>
      old
        ? {
            pages: [
              ...old.pages,
              { events: [auditRow(event(3))], next_after_position: null, read_position: 3 },
            ],
            pageParams: [...old.pageParams, 2],
          }
        : old,
    );
    await screen.findByText(/3 events loaded/);
    expect(renders.textFields).toBe(before);
  });

  it('keeps only what a row shows, and opens a linked event it has not read by its position', async () => {
    const urls: string[] = [];
    globalThis.fetch = (async (url: string) => {
      urls.push(url);
      const body = url.includes('after_position=6&limit=1')
        ? {
            events: [{ ...event(7), payload: { tokens: 42 }, metadata: { user: 'ada' } }],
            next_after_position: 7,
            read_position: 7,
          }
        : { events: [event(1), event(2)], next_after_position: null, read_position: 2 };
      return new Response(JSON.stringify(body), {
        headers: { 'content-type': 'application/json' },
      });
    }) as unknown as typeof fetch;
    const qc = renderAt('/audit?event=7');
    await screen.findByText(/2 events loaded/);
    const dialog = await screen.findByRole('dialog', { name: 'Event 7' });
    await within(dialog).findByText(/"tokens": 42/);
    within(dialog).getByText(/"user": "ada"/);
    const list = qc.getQueryData<InfiniteData<AuditRowsPage, number>>(auditKeys.events({}));
    expect(Object.keys(list!.pages[0]!.events[0]!).sort()).toEqual([
      'actor',
      'aggregate_id',
      'aggregate_type',
      'event_type',
      'global_position',
      'recorded_at',
    ]);
  });
});
