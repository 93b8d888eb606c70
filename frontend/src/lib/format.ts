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

export const fmtTime = (iso: string) =>
  (dateTime ??= new Intl.DateTimeFormat(undefined, {
    dateStyle: 'short',
    timeStyle: 'medium',
  })).format(new Date(iso));
