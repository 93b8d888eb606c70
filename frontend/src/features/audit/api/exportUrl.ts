import { buildUrl } from '@/lib/http';
import type { AuditFilter } from './keys';

/**
 * `GET /audit/export`: every event of the filter as NDJSON. A plain link: the browser sends the
 * session cookie and saves the streamed body, however long.
 */
export const exportUrl = (f: AuditFilter) => buildUrl('/audit/export', { ...f });
