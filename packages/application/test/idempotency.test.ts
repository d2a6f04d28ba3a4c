import { describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { fingerprint, keyState, replayable } from '@shop/application';

const stored = { fingerprint: 'print-a', result: { orderId: 'o-1' } };

describe('a key’s state', () => {
  test('completed wins over whoever holds the key now: a completed request replays whatever happens after', () => {
    expect(keyState(stored, true)).toEqual({ state: 'completed', stored });
    expect(keyState(stored, false)).toEqual({ state: 'completed', stored });
    expect(keyState(null, true)).toEqual({ state: 'in_flight' });
    expect(keyState(null, false)).toEqual({ state: 'free' });
  });
});

describe('replayable: the contract’s rule for a keyed request', () => {
  test('a free key lets the request be decided', () => {
    expect(replayable({ state: 'free' }, 'print-a')).toBeNull();
  });

  test('a key in flight is IDEMPOTENCY_KEY_IN_USE', () => {
    expect(() => replayable({ state: 'in_flight' }, 'print-a')).toThrow(expect.objectContaining({ code: 'IDEMPOTENCY_KEY_IN_USE' }));
  });

  test('a completed key replays its result for the same request, and is IDEMPOTENCY_KEY_REUSED for another', () => {
    expect(replayable({ state: 'completed', stored }, 'print-a')).toEqual({ result: { orderId: 'o-1' } });
    expect(() => replayable({ state: 'completed', stored }, 'print-b')).toThrow(expect.objectContaining({ code: 'IDEMPOTENCY_KEY_REUSED' }));
  });
});

describe('fingerprint', () => {
  test('is stored with its key, so it never changes between releases: SHA-256 of the JSON of [operation, input], base64url', () => {
    const input = { userId: 7, items: [{ productId: 3, quantity: 2 }], couponId: null };
    const text = JSON.stringify(['POST /orders', input]);
    expect(fingerprint('POST /orders', input)).toBe(createHash('sha256').update(text).digest('base64url'));
    // The value a key written by an earlier release holds: a retry after an upgrade still replays.
    expect(fingerprint('POST /orders', input)).toBe('faRa_o4HuBMtpmxjJlk2YlosTnqjhIgrv_sjoOUyvjU');
    expect(fingerprint('POST /orders', { ...input, couponId: 1 })).not.toBe(fingerprint('POST /orders', input));
  });
});
