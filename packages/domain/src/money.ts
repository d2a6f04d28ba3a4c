import { DomainError } from './errors.ts';

/**
 * Money is a whole number of won: KRW has no minor unit, so there is no rounding anywhere but
 * the one floor of a RATE discount. Every amount the service can produce stays far below 2^53
 * (balance ≤ 10^12, an order ≤ 100 lines × 10^4 units × 10^9 won = 10^15), so plain numbers are exact.
 */
export type Won = number;

export const MAX_PRICE: Won = 1_000_000_000;

export function assertWon(value: number, what: string): Won {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DomainError('VALIDATION_ERROR', `${what} must be a non-negative whole number of won`);
  }
  return value;
}
