// The first Intl object a page makes loads ICU: 65–150 ms of a page load on a phone (4× CPU
// throttling), where Governance formats only integers. So integers are grouped by hand, the
// same as Intl.NumberFormat('en'), and Intl formatters are made on first use.
let nf: Intl.NumberFormat | undefined;
const grouped = /\B(?=(\d{3})+$)/g;

export const fmtInt = (n: number | null | undefined) =>
  n === null || n === undefined
    ? '–'
    : Number.isSafeInteger(n)
      ? (n < 0 ? '-' : '') + String(Math.abs(n)).replace(grouped, ',')
      : (nf ??= new Intl.NumberFormat('en')).format(n);

export function fmtDuration(ms: number): string {
  if (ms <= 0) return 'now';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

// Built once: toLocaleString makes a formatter per call, which long tables pay per row.
let dateTime: Intl.DateTimeFormat | undefined;

const timeFormat = () =>
  (dateTime ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' }));

export const fmtTime = (iso: string) => timeFormat().format(new Date(iso));

const two = (n: number) => String(n).padStart(2, '0');

/**
 * Local time as `2026-12-03 14:05:09`, without Intl: the rows of the Dead letters page's first
 * view. The first Intl date formatter loads ICU's locale and time-zone data, 30-65 ms of one
 * task on a busy machine (four times that on a phone), which `fmtTime` pays on first use.
 */
export function fmtStamp(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const date = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${date} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/**
 * Makes `fmtTime`'s formatter now, in a task of its own (ICU loads with it, above), rather
 * than inside the render of the first rows that show times, which is one long task already.
 * The Audit log asks for it as its first read goes out (its `prefetch.ts`).
 */
export function prepareTimeFormat(): void {
  setTimeout(timeFormat, 0);
}
