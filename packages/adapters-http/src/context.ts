import type { FastifyRequest } from 'fastify';
import type { BestSellers, Clock, CouponIssuance, IdGenerator, OrderBook, OutboxStore, ReadStore, UnitOfWork } from '@shop/application';
import type { Metrics } from './metrics.ts';
import { createAuthenticator, type Principal } from './auth.ts';

export interface HttpDeps {
  readonly uow: UnitOfWork;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** The optimistic order path (ADR 0006); without it orders take the locking transaction. */
  readonly book?: OrderBook;
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

/** Authentication runs in the handler, after schema validation, as the contract orders errors. */
export function principalOf(deps: HttpDeps, req: FastifyRequest): Promise<Principal> {
  let authenticate = authenticators.get(deps.authSecret);
  if (!authenticate) authenticators.set(deps.authSecret, (authenticate = createAuthenticator(deps.authSecret)));
  return authenticate(req.headers.authorization);
}
