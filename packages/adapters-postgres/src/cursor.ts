import { DomainError } from '@shop/domain';

/** Cursors are base64url JSON so clients treat them as opaque and we can change what they hold. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, isValid: (v: unknown) => v is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!isValid(value)) throw new DomainError('VALIDATION_ERROR', 'cursor is not one this service returned');
  return value;
}

export const isPositiveId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * A cursor's parts go into SQL as a timestamptz and a uuid: anything PostgreSQL would refuse to
 * cast (a year JavaScript accepts but timestamptz cannot hold, 36 dashes as a "uuid") must be
 * refused here as a bad cursor, not reach the database and come back as a 500.
 */
const MIN_CURSOR_TIME = Date.parse('0001-01-01T00:00:00Z');
const MAX_CURSOR_TIME = Date.parse('9999-12-31T00:00:00Z');
export const isCursorTime = (v: unknown): v is string => {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return t >= MIN_CURSOR_TIME && t <= MAX_CURSOR_TIME;
};
export const isUuid = (v: unknown): v is string =>
  typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
