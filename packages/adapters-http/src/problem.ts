import type { ErrorCode } from '@shop/domain';

/** Codes the HTTP layer adds to the domain's: failures of the request itself, not the business. */
export type HttpErrorCode =
  | ErrorCode
  | 'NOT_FOUND'
  | 'ORDER_NOT_CANCELLABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'URI_TOO_LONG'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'INTERNAL_ERROR'
  | 'SERVICE_UNAVAILABLE';

const STATUS: Record<HttpErrorCode, number> = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  USER_NOT_FOUND: 404,
  PRODUCT_NOT_FOUND: 404,
  ORDER_NOT_FOUND: 404,
  COUPON_NOT_FOUND: 404,
  EVENT_NOT_FOUND: 404,
  NOT_FOUND: 404,
  OUT_OF_STOCK: 400,
  INVALID_COUPON: 400,
  INSUFFICIENT_BALANCE: 400,
  BALANCE_LIMIT_EXCEEDED: 400,
  COUPON_NOT_ISSUABLE: 400,
  COUPON_EXHAUSTED: 409,
  COUPON_ALREADY_ISSUED: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  ORDER_NOT_CANCELLABLE: 409,
  REFUND_EXCEEDS_ORDER: 400,
  IDEMPOTENCY_KEY_REUSED: 422,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

const TITLE: Record<HttpErrorCode, string> = {
  VALIDATION_ERROR: 'The request is not valid',
  UNAUTHORIZED: 'Authentication required',
  FORBIDDEN: 'Not allowed for this user',
  USER_NOT_FOUND: 'User not found',
  PRODUCT_NOT_FOUND: 'Product not found',
  ORDER_NOT_FOUND: 'Order not found',
  COUPON_NOT_FOUND: 'Coupon not found',
  EVENT_NOT_FOUND: 'Event not found',
  NOT_FOUND: 'No such endpoint',
  OUT_OF_STOCK: 'Out of stock',
  INVALID_COUPON: 'The coupon cannot be used',
  INSUFFICIENT_BALANCE: 'Insufficient balance',
  BALANCE_LIMIT_EXCEEDED: 'Balance limit exceeded',
  COUPON_NOT_ISSUABLE: 'The coupon is not being issued now',
  COUPON_EXHAUSTED: 'The coupon is exhausted',
  COUPON_ALREADY_ISSUED: 'The coupon was already issued to this user',
  IDEMPOTENCY_KEY_IN_USE: 'A request with this Idempotency-Key is in progress',
  IDEMPOTENCY_KEY_REUSED: 'The Idempotency-Key was used with another request',
  ORDER_NOT_CANCELLABLE: 'The order cannot be cancelled or refunded',
  REFUND_EXCEEDS_ORDER: 'The refund asks for units the order does not have left',
  PAYLOAD_TOO_LARGE: 'The request body is too large',
  URI_TOO_LONG: 'The URL is too long',
  UNSUPPORTED_MEDIA_TYPE: 'The body must be application/json',
  RATE_LIMITED: 'Too many requests',
  INTERNAL_ERROR: 'Internal error',
  SERVICE_UNAVAILABLE: 'Service temporarily unavailable',
};

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: HttpErrorCode;
}

export const statusOf = (code: HttpErrorCode): number => STATUS[code];

export function problem(code: HttpErrorCode, detail: string): Problem {
  return {
    type: `/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLE[code],
    status: STATUS[code],
    detail,
    code,
  };
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
