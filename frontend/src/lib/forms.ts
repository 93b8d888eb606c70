import type { ZodType } from 'zod';
import { ApiError } from './http';

export type FieldErrors<T> = Partial<Record<keyof T & string, string>>;

/** Validates with zod: the parsed value, or the first message per field. */
export function validate<T>(
  schema: ZodType<T>,
  values: unknown,
): { data?: T; errors: FieldErrors<T> } {
  const r = schema.safeParse(values);
  if (r.success) return { data: r.data, errors: {} };
  const errors: Record<string, string> = {};
  for (const issue of r.error.issues) {
    const k = String(issue.path[0] ?? '');
    errors[k] ??= issue.message;
  }
  return { errors: errors as FieldErrors<T> };
}

/** The server's 400 names the field at fault: show it there (else return it as a form error). */
export function serverFieldError<T>(
  err: unknown,
  fields: readonly string[],
): { field?: keyof T & string; message: string } | null {
  if (!(err instanceof ApiError))
    return err ? { message: String((err as Error).message ?? err) } : null;
  const f = err.field?.split(/[.[]/)[0];
  if (f && fields.includes(f)) return { field: f as keyof T & string, message: err.message };
  return { message: `${err.message} (${err.code})` };
}
