/**
 * Every failure a client can see has a stable code from the API contract. The domain and the
 * application throw DomainError with one of these; the HTTP adapter alone maps codes to statuses.
 */
export const ERROR_CODES = [
  'VALIDATION_ERROR',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'USER_NOT_FOUND',
  'PRODUCT_NOT_FOUND',
  'ORDER_NOT_FOUND',
  'COUPON_NOT_FOUND',
  'EVENT_NOT_FOUND',
  'OUT_OF_STOCK',
  'INVALID_COUPON',
  'INSUFFICIENT_BALANCE',
  'ORDER_NOT_CANCELLABLE',
  'REFUND_EXCEEDS_ORDER',
  'BALANCE_LIMIT_EXCEEDED',
  'COUPON_EXHAUSTED',
  'COUPON_ALREADY_ISSUED',
  'COUPON_NOT_ISSUABLE',
  'IDEMPOTENCY_KEY_IN_USE',
  'IDEMPOTENCY_KEY_REUSED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class DomainError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, detail: string) {
    super(detail);
    this.name = 'DomainError';
    this.code = code;
  }
}

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;
