/**
 * An Idempotency-Key's state as a store reads it (ports answer in these words; idempotency.ts
 * decides what each means for a request).
 */

/** What a completed request stored under its key. */
export interface CompletedKey {
  readonly fingerprint: string;
  readonly result: unknown;
}

/**
 * A key's state, in the one vocabulary every use case and adapter speaks:
 * - free: no request with it completed, and none holds it now;
 * - in_flight: another request holds it now (a transaction-scoped claim, so a crash frees it);
 * - completed: a request with it was answered 2xx and stored its result.
 */
export type KeyState =
  | { readonly state: 'free' }
  | { readonly state: 'in_flight' }
  | { readonly state: 'completed'; readonly stored: CompletedKey };

/** A key's state from what a store read: a completed key stays completed, whoever holds it now. */
export function keyState(stored: CompletedKey | null, heldElsewhere: boolean): KeyState {
  if (stored) return { state: 'completed', stored };
  return heldElsewhere ? { state: 'in_flight' } : { state: 'free' };
}
