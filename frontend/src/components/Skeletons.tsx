// Placeholders as plain elements styled by index.html's CSS (`.skel`, pulsing like MUI's
// Skeleton): a page's first render inserts no emotion style for them.

export function CardSkeleton({ height = 120 }: { height?: number }) {
  return <div className="skel rounded" style={{ height }} aria-label="Loading" />;
}

export function TableSkeleton({ rows = 8 }: { rows?: number }) {
  return (
    <div className="skeleton-rows" aria-label="Loading" role="progressbar">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="skel" style={{ height: 32 }} />
      ))}
    </div>
  );
}

/**
 * A page while its session or its code is on the way. With `title`, the page's own heading,
 * where and as the page draws it: the heading (the largest text of every page) is painted
 * with the shell, before `/auth/me` and the page's chunk have arrived, and the page then puts
 * the same heading in the same place (no layout shift, no later "largest paint"). Without one
 * (a path `pageTitle` does not name), no heading: an empty one is announced to screen readers
 * as a heading with no text (axe `empty-heading`).
 */
export function PageSkeleton({ title }: { title?: string }) {
  return (
    <div className="page-skeleton">
      {title ? <h1 className="page-title">{title}</h1> : null}
      <div className="skeleton-grid" role="progressbar" aria-label="Loading page">
        <div className="skel rounded" style={{ height: 140 }} />
        <div className="skel rounded" style={{ height: 280 }} />
      </div>
    </div>
  );
}
