// Apart from format.ts (formatters and ICU): the pages' URL filters need this before the
// page's chunk loads (app/pages.ts prefetches their first read), and format.ts is not small.

/** A `datetime-local` input's value (the reader's time zone) as RFC 3339; undefined when empty or not a time. */
export function localToIso(local: string): string | undefined {
  if (!local) return undefined;
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}
