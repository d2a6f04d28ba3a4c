import type { FastifyRequest } from 'fastify';
import type { BestSellers, Clock, CouponIssuance, IdGenerator, OrderBook, OutboxStore, ReadStore, UnitOfWork } from '@shop/application';
import type { Metrics } from './metrics.ts';
import { createAuthenticator, type Authenticator, type Principal } from './auth.ts';
import { RateLimitedError, type Limiters } from './protection.ts';

export interface HttpDeps {
  readonly uow: UnitOfWork;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** Where orders are decided and written (ADR 0006, 0007). */
  readonly book: OrderBook;
  /** HS256 tokens signed with this secret (the demo's and the tests'), unless `authenticate` is given. */
  readonly authSecret?: Uint8Array;
  /** How bearer tokens are verified, e.g. createJwksAuthenticator; wins over `authSecret`. */
  readonly authenticate?: Authenticator;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
  readonly outbox: OutboxStore;
  /** Wakes the local relay and announces new events to the other processes' relays. */
  readonly wakeRelay: () => void;
  readonly events: { recorded(): void };
  readonly metrics: Metrics;
  readonly issuance: CouponIssuance;
  readonly bestSellers: (days: number, limit: number) => Promise<BestSellers>;
  /** How many days after it was placed an order may be cancelled (ORDER_CANCEL_DAYS). */
  readonly cancelDays: number;
}

const authenticators = new WeakMap<Uint8Array, Authenticator>();

function authenticatorOf(deps: HttpDeps): Authenticator {
  if (deps.authenticate) return deps.authenticate;
  const secret = deps.authSecret;
  if (!secret) throw new Error('HttpDeps needs authenticate or authSecret');
  let authenticate = authenticators.get(secret);
  if (!authenticate) authenticators.set(secret, (authenticate = createAuthenticator(secret)));
  return authenticate;
}
/** Per-user limits, set by buildApp from its limits. */
export const userLimits = new WeakMap<HttpDeps, NonNullable<Limiters['byUser']>>();

/**
 * Authentication runs in the handler, after schema validation, as the contract orders errors;
 * then the user's rate limit (admins, the operators, are not limited).
 */
export async function principalOf(deps: HttpDeps, req: FastifyRequest): Promise<Principal> {
  const principal = await authenticatorOf(deps)(req.headers.authorization);
  const limit = userLimits.get(deps);
  if (limit && principal.role === 'user') {
    const wait = await limit(req, principal.userId);
    if (wait > 0) throw new RateLimitedError(`user ${principal.userId} is sending requests faster than allowed`, wait);
  }
  return principal;
}
