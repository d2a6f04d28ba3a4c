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
