import type { FastifyRequest } from 'fastify';
import type { BestSellers, Clock, CouponIssuance, IdGenerator, OutboxStore, ReadStore, UnitOfWork } from '@shop/application';
import type { Metrics } from './metrics.ts';
import { authenticate, type Principal } from './auth.ts';

export interface HttpDeps {
  readonly uow: UnitOfWork;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
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

/** Authentication runs in the handler, after schema validation, as the contract orders errors. */
export const principalOf = (deps: HttpDeps, req: FastifyRequest): Promise<Principal> =>
  authenticate(req.headers.authorization, deps.authSecret);
