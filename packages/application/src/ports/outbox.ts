import type { Page } from './records.ts';
import type { PurgeBatch } from './purge.ts';

/** One recorded event as the relay sees it; `payload` is the exact body the platform receives. */
export interface OutboxRecord {
  readonly eventId: string;
  readonly type: string;
  readonly payload: unknown;
  /** Delivery attempts so far, including the one this claim starts. */
  readonly attempts: number;
  readonly createdAt: Date;
}

export interface OutboxRecordView extends OutboxRecord {
  readonly aggregateId: string;
  readonly nextAttemptAt: Date;
  readonly lastError: string | null;
  readonly deliveredAt: Date | null;
}

export type OutboxListStatus = 'pending' | 'failed';

export interface OutboxStats {
  /** Undelivered records. */
  readonly backlog: number;
  /** Of those, records that failed at least once. */
  readonly failing: number;
  /** Age of the oldest undelivered record, 0 when none. */
  readonly oldestUndeliveredSeconds: number;
}

export interface OutboxStore {
  /**
   * Leases up to `limit` due records for `leaseMs`: no other relay claims them until the lease
   * ends, and a relay that dies mid-delivery simply lets the lease run out (the record is then
   * delivered again, with the same eventId). A record is never claimed while an earlier record
   * of its aggregate is undelivered: an order's events reach the platform in the order they were
   * recorded (order.cancelled only after order.paid was accepted), and the relay need not know it.
   */
  claim(limit: number, leaseMs: number): Promise<OutboxRecord[]>;
  /**
   * Extends the lease of records this relay still holds (each as `attempts` its claim left it,
   * undelivered) to `leaseMs` from now; a record another relay claimed since is left alone.
   */
  renewLease(claims: ReadonlyArray<Pick<OutboxRecord, 'eventId' | 'attempts'>>, leaseMs: number): Promise<void>;
  /**
   * Gives back records this relay claimed and did not try (the circuit opened first): due at once,
   * their claim not counted as an attempt; a record another relay claimed since is left alone.
   */
  releaseLease(claims: ReadonlyArray<Pick<OutboxRecord, 'eventId' | 'attempts'>>): Promise<void>;
  markDelivered(eventIds: readonly string[]): Promise<void>;
  /** Records a failed attempt; the record is due again after `retryInMs` (database time). */
  markFailed(eventId: string, retryInMs: number, error: string): Promise<void>;
  /** One batch of the purge of records delivered before `deliveredBefore` (`Purgeable.purgeBatch`). */
  purgeDelivered(deliveredBefore: Date, limit: number, resume: string | null): Promise<PurgeBatch>;
  /** About how many records were delivered before `deliveredBefore` (`Purgeable.estimateExpired`). */
  estimateDelivered(deliveredBefore: Date): Promise<number>;
  stats(): Promise<OutboxStats>;
  list(status: OutboxListStatus, limit: number, cursor: string | null): Promise<Page<OutboxRecordView>>;
  /** Makes a record due now, even if it was delivered; false when there is no such record. */
  redeliver(eventId: string): Promise<OutboxRecordView | null>;
}

/**
 * A new order's event handed from its commit straight to this process's relay (ADR 0003): written
 * already leased to this process, it is delivered from memory, never claimed. A slot is taken
 * before the write, so that the relay bounds what it holds, and given back whatever the write did.
 */
export interface HandoverSlot {
  /** How long the event is leased at insert: no relay claims it before, this one renews it while it holds it. */
  readonly leaseMs: number;
  /** The event was committed leased (its `attempts` 1): deliver it. */
  deliver(record: OutboxRecord): void;
  /** Nothing was committed with this slot: it is free again. After `deliver`, nothing. */
  release(): void;
}

/** Where events go: the data platform over HTTP, NATS JetStream, or a local file. */
export interface EventPublisher {
  /**
   * Resolves once the platform has accepted the event; rejects on anything else, and within the
   * publisher's own timeout whatever the platform or the client library does: the relay awaits a
   * whole batch before it marks it, so one delivery that never settled would hold every record.
   */
  publish(record: OutboxRecord): Promise<void>;
  close(): Promise<void>;
}

/** Tells relays in other processes that events were recorded (PostgreSQL LISTEN/NOTIFY). */
export interface RelayWakeChannel {
  /** Announce new records; cheap and safe to call often. */
  announce(): void;
  /** Calls `onWake` when another process announces. */
  listen(onWake: () => void): Promise<void>;
  close(): Promise<void>;
}
