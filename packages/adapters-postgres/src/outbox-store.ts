import { sql, type Kysely } from 'kysely';
import { isIssuedId, type OutboxRecord, type OutboxRecordView, type OutboxStore } from '@shop/application';
import type { Database } from './schema.ts';
import { cursorTimeOf, decodeCursor, encodeCursor, isCursorTime } from './cursor.ts';
import { dropExpiredPartition, expiredRows } from './partitions.ts';

type Row = {
  event_id: string;
  event_type: string;
  aggregate_id: string;
  payload: unknown;
  attempts: number;
  created_at: Date;
  next_attempt_at: Date;
  last_error: string | null;
  delivered_at: Date | null;
};

const toRecord = (r: Pick<Row, 'event_id' | 'event_type' | 'payload' | 'attempts' | 'created_at'>): OutboxRecord => ({
  eventId: r.event_id,
  type: r.event_type,
  payload: r.payload,
  attempts: r.attempts,
  createdAt: r.created_at,
});

const toView = (r: Row): OutboxRecordView => ({
  ...toRecord(r),
  aggregateId: r.aggregate_id,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  deliveredAt: r.delivered_at,
});

/** [created_at to the microsecond, event_id]: the list's order, so no row is skipped or repeated. */
type ListCursor = [string, string];
const isListCursor = (v: unknown): v is ListCursor =>
  Array.isArray(v) && v.length === 2 && isCursorTime(v[0]) && isIssuedId(v[1]);

export function pgOutboxStore(db: Kysely<Database>): OutboxStore {
  return {
    async claim(limit, leaseMs) {
      // SKIP LOCKED lets relays in other processes take other records instead of queueing here;
      // the lease (next_attempt_at in the future) keeps them away after this statement commits.
      // An event that follows another of its aggregate (an order's order.cancelled, its
      // order.paid) waits until that one was accepted, whichever relay holds it and however long
      // it is retried; it is not claimed meanwhile, so it holds back nothing of other aggregates.
      // The check is one primary-key row, and only for an event that follows another; a
      // predecessor already purged was delivered long ago (NULL: not false).
      const { rows } = await sql<Row>`
        WITH due AS (
          SELECT event_id FROM outbox_events e
          WHERE delivered_at IS NULL AND next_attempt_at <= now()
            AND (e.follows IS NULL
                 OR (SELECT p.delivered_at IS NOT NULL FROM outbox_events p WHERE p.event_id = e.follows) IS NOT FALSE)
          ORDER BY next_attempt_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE outbox_events e
        SET attempts = e.attempts + 1, next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
        FROM due WHERE e.event_id = due.event_id
        RETURNING e.event_id, e.event_type, e.payload, e.attempts, e.created_at`.execute(db);
      return rows.sort((a, b) => a.created_at.getTime() - b.created_at.getTime()).map(toRecord);
    },
    async renewLease(claims, leaseMs) {
      if (claims.length === 0) return;
      // attempts as the claim left it: a record whose lease lapsed and another relay claimed has
      // more, and keeps that relay's lease.
      await sql`
        UPDATE outbox_events e SET next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
        FROM unnest(${claims.map((c) => c.eventId)}::uuid[], ${claims.map((c) => c.attempts)}::int[]) AS c(event_id, attempts)
        WHERE e.event_id = c.event_id AND e.attempts = c.attempts AND e.delivered_at IS NULL`.execute(db);
    },
    async releaseLease(claims) {
      if (claims.length === 0) return;
      await sql`
        UPDATE outbox_events e SET next_attempt_at = now(), attempts = e.attempts - 1
        FROM unnest(${claims.map((c) => c.eventId)}::uuid[], ${claims.map((c) => c.attempts)}::int[]) AS c(event_id, attempts)
        WHERE e.event_id = c.event_id AND e.attempts = c.attempts AND e.delivered_at IS NULL`.execute(db);
    },
    async markDelivered(eventIds) {
      await sql`
        UPDATE outbox_events SET delivered_at = now(), last_error = NULL
        WHERE event_id = ANY(${eventIds as string[]}::uuid[])`.execute(db);
    },
    async markFailed(eventId, retryInMs, error) {
      await sql`
        UPDATE outbox_events SET next_attempt_at = now() + ${retryInMs} * interval '1 millisecond', last_error = ${error}
        WHERE event_id = ${eventId}::uuid AND delivered_at IS NULL`.execute(db);
    },
    // Delivered events leave a day at a time: the outbox is partitioned by day of event id
    // (migration 0014); a day goes once every event in it was delivered before the cutoff.
    purgeDelivered: (deliveredBefore, limit) => dropExpiredPartition(db, 'outbox_events', deliveredBefore, limit),
    estimateDelivered: (deliveredBefore) => expiredRows(db, 'outbox_events', deliveredBefore),
    async stats() {
      const { rows } = await sql<{ backlog: number; failing: number; oldest: number | null }>`
        SELECT count(*)::int AS backlog, count(last_error)::int AS failing,
               extract(epoch FROM now() - min(created_at))::float8 AS oldest
        FROM outbox_events WHERE delivered_at IS NULL`.execute(db);
      const r = rows[0]!;
      return { backlog: r.backlog, failing: r.failing, oldestUndeliveredSeconds: Math.max(0, r.oldest ?? 0) };
    },
    async list(status, limit, cursor) {
      let q = db
        .selectFrom('outbox_events')
        .selectAll()
        .select(cursorTimeOf('created_at').as('cursor_at'))
        .where('delivered_at', 'is', null)
        .where('last_error', status === 'failed' ? 'is not' : 'is', null)
        .orderBy('created_at')
        .orderBy('event_id')
        .limit(limit + 1);
      if (cursor !== null) {
        const [at, id] = decodeCursor(cursor, isListCursor);
        q = q.where(sql<boolean>`(created_at, event_id) > (${at}::timestamptz, ${id}::uuid)`);
      }
      const rows = (await q.execute()) as Array<Row & { cursor_at: string }>;
      const more = rows.length > limit;
      const kept = more ? rows.slice(0, limit) : rows;
      const last = kept[kept.length - 1];
      return {
        items: kept.map(toView),
        nextCursor: more && last ? encodeCursor([last.cursor_at, last.event_id]) : null,
      };
    },
    async redeliver(eventId) {
      if (!isIssuedId(eventId)) return null;
      const row = await db
        .updateTable('outbox_events')
        .set({ delivered_at: null, next_attempt_at: sql`now()` })
        .where('event_id', '=', eventId)
        .returningAll()
        .executeTakeFirst();
      return row ? toView(row as Row) : null;
    },
  };
}
