import type { FastifyRequest } from 'fastify';
import type { BestSellers, Clock, CouponIssuance, IdGenerator, OrderBook, OutboxStore, ReadStore, UnitOfWork } from '@shop/application';
import type { Metrics } from './metrics.ts';
import { createAuthenticator, type Principal } from './auth.ts';
import { RateLimitedError, type TokenBuckets } from './protection.ts';

export interface HttpDeps {
  readonly uow: UnitOfWork;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** Where orders are decided and written (ADR 0006, 0007). */
  readonly book: OrderBook;
  readonly authSecret: Uint8Array;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
  readonly outbox: OutboxStore;
  /** Wakes the local relay and announces new events to the other processes' relays. */
  readonly wakeRelay: () => void;
  readonly events: { recorded(): void };
  readonly metrics: Metrics;
  readonly issuance: CouponIssuance;
  readonly bestSellers: (days: number, limit: number) => Promise<BestSellers>;
}

const authenticators = new WeakMap<Uint8Array, (header: string | undefined) => Promise<Principal>>();
/** Per-user buckets, set by buildApp from its limits. */
export const userBuckets = new WeakMap<HttpDeps, TokenBuckets>();

/**
 * Authentication runs in the handler, after schema validation, as the contract orders errors;
 * then the user's rate limit (admins, the operators, are not limited).
 */
export async function principalOf(deps: HttpDeps, req: FastifyRequest): Promise<Principal> {
  let authenticate = authenticators.get(deps.authSecret);
  if (!authenticate) authenticators.set(deps.authSecret, (authenticate = createAuthenticator(deps.authSecret)));
  const principal = await authenticate(req.headers.authorization);
  const buckets = userBuckets.get(deps);
  if (buckets && principal.role === 'user') {
    const wait = buckets.take(`user:${principal.userId}`);
    if (wait > 0) throw new RateLimitedError(`user ${principal.userId} is sending requests faster than allowed`, wait);
  }
  return principal;
}
