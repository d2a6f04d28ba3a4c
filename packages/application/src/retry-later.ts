/** Nothing was changed and the same request may well succeed in a moment: answered 503 with Retry-After. */
export class RetryLaterError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'RetryLaterError';
  }
}

/** A write the order book never sent (its client gone, or queued past its deadline): nothing committed. */
export const abandonedWrite = (): RetryLaterError =>
  new RetryLaterError('the order writer was too busy to take this request in time; nothing was written, try again');

/**
 * How many times an order or a cancellation is decided before it is answered 503. A write whose
 * guard failed means another commit changed what it was decided on, so every new decision follows
 * someone's progress, and the next snapshot usually answers at once (OUT_OF_STOCK at a sold-out
 * product, ORDER_NOT_CANCELLABLE after a concurrent cancel). Past this many, the rows are being
 * rewritten faster than they can be read.
 */
export const MAX_DECISIONS = 8;
