import { describe, expect, test } from 'vitest';
import { MAX_BALANCE, MAX_CHARGE, assertWon, chargeBalance, payFromBalance } from '../src/index.ts';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('chargeBalance', () => {
  test('adds the amount', () => {
    expect(chargeBalance(500, 1)).toBe(501);
    expect(chargeBalance(0, MAX_CHARGE)).toBe(MAX_CHARGE);
  });

  test.each([0, -1, 1.5, MAX_CHARGE + 1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53 + 2])(
    'refuses %s as an amount',
    (amount) => {
      expect(codeOf(() => chargeBalance(0, amount))).toBe('VALIDATION_ERROR');
    },
  );

  test('may reach the upper limit exactly but not pass it', () => {
    expect(chargeBalance(MAX_BALANCE - 10, 10)).toBe(MAX_BALANCE);
    expect(codeOf(() => chargeBalance(MAX_BALANCE - 10, 11))).toBe('BALANCE_LIMIT_EXCEEDED');
  });
});

describe('payFromBalance', () => {
  test('may spend the balance to zero', () => {
    expect(payFromBalance(3_000, 3_000)).toBe(0);
    expect(payFromBalance(3_000, 0)).toBe(3_000);
  });

  test('never goes negative', () => {
    expect(codeOf(() => payFromBalance(2_999, 3_000))).toBe('INSUFFICIENT_BALANCE');
  });
});

describe('assertWon', () => {
  test('accepts whole non-negative amounts only', () => {
    expect(assertWon(0, 'price')).toBe(0);
    expect(assertWon(2 ** 53 - 1, 'price')).toBe(2 ** 53 - 1);
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN]) expect(codeOf(() => assertWon(bad, 'price'))).toBe('VALIDATION_ERROR');
  });
});
