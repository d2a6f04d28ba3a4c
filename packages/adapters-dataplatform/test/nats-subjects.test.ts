import { expect, test } from 'vitest';
import { subjectMatches } from '../src/nats-publisher.ts';

// Whether an existing stream already carries a subject decides whether the publisher edits it.
test.each([
  ['orders.paid', 'orders.paid', true],
  ['orders.paid', 'orders.cancelled', false],
  ['orders.*', 'orders.cancelled', true],
  ['orders.>', 'orders.cancelled', true],
  ['>', 'orders.cancelled', true],
  ['orders.>', 'orders', false],
  ['orders.*', 'orders.cancelled.late', false],
  ['*.cancelled', 'orders.cancelled', true],
  ['orders.paid.>', 'orders.paid', false],
])('stream subject %s carries %s: %s', (pattern, subject, expected) => {
  expect(subjectMatches(pattern, subject)).toBe(expected);
});
