import { sql } from 'kysely';
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
 * cast (a year JavaScript accepts but timestamptz cannot hold, February 31st, 36 dashes as a
 * "uuid") must be refused here as a bad cursor, not reach the database and come back as a 500.
 *
 * The time is kept to the microsecond, as timestamptz holds it: a cursor cut to the millisecond
 * falls between rows written in one transaction (one now()) and skips or repeats them.
 */
const MIN_CURSOR_TIME = Date.parse('0001-01-01T00:00:00Z');
const MAX_CURSOR_TIME = Date.parse('9999-12-31T00:00:00Z');
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
export const isCursorTime = (v: unknown): v is string => {
  if (typeof v !== 'string' || !CURSOR_TIME.test(v)) return false;
  const t = Date.parse(v);
  // JavaScript rolls February 31st over into March; PostgreSQL refuses it.
  return t >= MIN_CURSOR_TIME && t <= MAX_CURSOR_TIME && new Date(t).toISOString().slice(0, 19) === v.slice(0, 19);
};

/** A timestamptz column as a cursor keeps it: UTC, to the microsecond (a JavaScript Date keeps milliseconds). */
export const cursorTimeOf = (column: string) =>
  sql<string>`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
