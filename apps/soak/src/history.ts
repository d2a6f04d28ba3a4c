import type pg from 'pg';
import { IDEMPOTENCY_RETENTION_MS } from '@shop/application';
import { seedRetainedHistory, type SeededDay } from '@shop/adapters-postgres/bench';

/**
 * The keys and delivered events a service running for days at this soak's rate would hold (see
 * retained-history.ts), seeded before the load so that the run starts where a long-running
 * service stands and its midnight drops a full day of each.
 */

/**
 * Rows per second of load aimed at: 48,744 keys and 66,555 events in the 30.04 minutes at 100
 * requests/s of the run recorded on 2026-12-06 (docs/reliability.md before the clocks were shifted).
 */
const KEYS_PER_REQUEST = 0.27;
const EVENTS_PER_REQUEST = 0.37;
/** OUTBOX_RETENTION_DAYS of the soak's instances (topology.ts). */
export const EVENT_RETENTION_DAYS = 1;
/**
 * How fast the seed writes, rows per second, and what else setting up takes (PostgreSQL, NATS,
 * two instances, the fixture): to plan when the load starts. Measured on the 2-core machine; a
 * seed that is faster waits, one that is slower moves midnight earlier in the load (the report
 * says where it fell).
 */
const SEED_ROWS_PER_SECOND = 25_000;
const OTHER_SETUP_MS = 90_000;

/** The most rows the seed writes: every day not yet droppable, in full. */
const seedRows = (rate: number) =>
  rate * (KEYS_PER_REQUEST * (IDEMPOTENCY_RETENTION_MS / 1000 + 86_400) + EVENTS_PER_REQUEST * (EVENT_RETENTION_DAYS + 1) * 86_400);

export const setupEstimateMs = (rate: number) => OTHER_SETUP_MS + (seedRows(rate) / SEED_ROWS_PER_SECOND) * 1000;

export function seedHistory(pool: pg.Pool, rate: number, userIds: readonly number[], say: (line: string) => void): Promise<SeededDay[]> {
  return seedRetainedHistory(pool, {
    userIds, keysPerSecond: rate * KEYS_PER_REQUEST, eventsPerSecond: rate * EVENTS_PER_REQUEST,
    keyRetentionMs: IDEMPOTENCY_RETENTION_MS, eventRetentionDays: EVENT_RETENTION_DAYS, until: new Date(),
  }, say);
}
