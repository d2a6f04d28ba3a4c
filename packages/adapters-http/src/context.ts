import type { BestSellers, Clock, CouponIssuance, HandoverSlot, IdGenerator, OrderBook, OutboxStore, ReadStore, RecentOrderKeys, UnitOfWork } from '@shop/application';
import type { Metrics } from './metrics.ts';
import type { Authenticator } from './auth.ts';

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
  /** True while event delivery is held back (the relay's circuit is open): readiness says degraded. */
  readonly deliveryDegraded?: () => boolean;
  readonly outbox: OutboxStore;
  /** Wakes the local relay and announces new events to the other processes' relays. */
  readonly wakeRelay: () => void;
  /** After a commit that recorded events; `reserve`: a new order's event delivered by this process's relay from its commit (ADR 0003). */
  readonly events: { recorded(): void; reserve?(): HandoverSlot | null };
  /** Keyed orders this instance answered a moment ago: a retry of one is answered without a read. */
  readonly recentKeys?: RecentOrderKeys;
  /** Told after an admin changed a product, so that this instance's product cache reads it again (a new id is never cached). */
  readonly productChanged?: (productId: number) => void;
  readonly metrics: Metrics;
  readonly issuance: CouponIssuance;
  readonly bestSellers: (days: number, limit: number) => Promise<BestSellers>;
  /** How many days after it was placed an order may be cancelled (ORDER_CANCEL_DAYS). */
  readonly cancelDays: number;
}
