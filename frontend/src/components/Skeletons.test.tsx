import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { PageSkeleton } from './Skeletons';

describe('PageSkeleton', () => {
  it("draws the page's heading while the page is on the way", () => {
    render(<PageSkeleton title="Audit log" />);
    expect(screen.getByRole('heading', { level: 1, name: 'Audit log' })).toBeTruthy();
  });

  it('draws no heading when the page has no title (no empty heading)', () => {
    const { container } = render(<PageSkeleton />);
    expect(container.querySelector('h1')).toBeNull();
    expect(screen.getByRole('progressbar', { name: 'Loading page' })).toBeTruthy();
  });
});
