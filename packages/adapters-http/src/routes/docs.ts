import { ProblemResponse } from '../schemas.ts';

/** Operations that take a bearer token (a user's, or an admin's). */
export const USER_SECURITY = [{ bearerAuth: [] }];
/**
 * Operations that take no token, said explicitly (`security: []`) so that a client generator
 * and a reader of /openapi.json need not guess: the contract's public endpoints.
 */
export const PUBLIC_SECURITY: Array<Record<string, string[]>> = [];
export const errorResponses = { '4xx': ProblemResponse, '5xx': ProblemResponse } as const;

/**
 * Where the API is: relative to the document, so the base URL a client generator or /docs uses
 * is whichever host (and port, behind whatever proxy) served /openapi.json.
 */
export const OPENAPI_SERVERS = [{ url: '/', description: 'The host that served this document' }];

/**
 * The groups of /openapi.json and /docs, in the order a client developer reads the API: placing
 * and reading orders first, then paying for them (balance), what to buy (products), coupons,
 * then the operators' endpoints. Routes are registered in the same order, so /openapi.json
 * lists its paths that way too.
 */
export const OPENAPI_TAGS = [
  { name: 'orders', description: "Place an order and pay from the balance (the user's own token); read orders; cancel and refund one" },
  { name: 'balance', description: 'Charge a balance and read it and its history (the user, or an admin)' },
  { name: 'products', description: 'The catalogue and the best sellers (public)' },
  { name: 'coupons', description: "Claim a coupon (the user's own token); list a user's coupons" },
  { name: 'admin', description: 'Users, products, coupons and event delivery (admin token)' },
  { name: 'operations', description: 'Health and metrics' },
];
