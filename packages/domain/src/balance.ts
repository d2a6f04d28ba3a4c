import { DomainError } from './errors.ts';
import type { Won } from './money.ts';

export const MAX_BALANCE: Won = 1_000_000_000_000;
export const MIN_CHARGE: Won = 1;
export const MAX_CHARGE: Won = 10_000_000;

export type LedgerEntryType = 'CHARGE' | 'PAYMENT' | 'REFUND';

/** Returns the balance after a top-up; a balance is capped so a runaway client cannot inflate it. */
export function chargeBalance(balance: Won, amount: Won): Won {
  if (!Number.isSafeInteger(amount) || amount < MIN_CHARGE || amount > MAX_CHARGE) {
    throw new DomainError('VALIDATION_ERROR', `amount must be an integer from ${MIN_CHARGE} to ${MAX_CHARGE}`);
  }
  const after = balance + amount;
  if (after > MAX_BALANCE) {
    throw new DomainError(
      'BALANCE_LIMIT_EXCEEDED',
      `a balance may not exceed ${MAX_BALANCE} won; the current balance is ${balance}`,
    );
  }
  return after;
}

/** Returns the balance after paying; a balance never goes negative. */
export function payFromBalance(balance: Won, amount: Won): Won {
  if (balance < amount) {
    throw new DomainError('INSUFFICIENT_BALANCE', `the balance ${balance} is less than the amount due ${amount}`);
  }
  return balance - amount;
}
