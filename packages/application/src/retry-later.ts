/** Nothing was changed and the same request may well succeed in a moment: answered 503 with Retry-After. */
export class RetryLaterError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'RetryLaterError';
  }
}
