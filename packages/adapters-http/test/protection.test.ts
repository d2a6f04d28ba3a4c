import { expect, test } from 'vitest';
import { TokenBuckets } from '../src/protection.ts';

test('a bucket allows its burst at once, then its rate, and says how long to wait', () => {
  const buckets = new TokenBuckets({ perSecond: 2, burst: 3 });
  const t = 1_000_000;
  expect([0, 1, 2].map(() => buckets.take('a', t))).toEqual([0, 0, 0]);
  expect(buckets.take('a', t)).toBeCloseTo(0.5); // one token comes every half second
  expect(buckets.take('b', t)).toBe(0); // keys are independent
  expect(buckets.take('a', t + 500)).toBe(0);
  expect(buckets.take('a', t + 500)).toBeCloseTo(0.5);
  expect(buckets.take('a', t + 60_000)).toBe(0); // refilled, never above the burst
  expect([0, 1].map(() => buckets.take('a', t + 60_000))).toEqual([0, 0]);
  expect(buckets.take('a', t + 60_000)).toBeGreaterThan(0);
});

test('the idlest keys are forgotten first when the table is full', () => {
  const buckets = new TokenBuckets({ perSecond: 1, burst: 1 }, 2);
  expect(buckets.take('a', 0)).toBe(0);
  expect(buckets.take('b', 0)).toBe(0);
  expect(buckets.take('a', 0)).toBeGreaterThan(0); // a is now the most recently used
  expect(buckets.take('c', 0)).toBe(0); // evicts b
  expect(buckets.take('a', 0)).toBeGreaterThan(0); // a kept its empty bucket
  expect(buckets.take('b', 0)).toBe(0); // b starts afresh
});
