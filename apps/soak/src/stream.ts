import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type pg from 'pg';
import { NATS_STREAM, NATS_SUBJECTS } from '@shop/adapters-dataplatform';

/**
 * The JetStream stream against the outbox, once every event is delivered: each recorded event in
 * the stream exactly once (Nats-Msg-Id = eventId), nothing else in it, and each order's events in
 * the order they were recorded (order.paid, order.refunded…, order.cancelled last).
 */
export interface StreamCheck {
  readonly recorded: number;
  readonly messages: number;
  readonly distinct: number;
  /** Messages beyond the first of their eventId. */
  readonly duplicates: number;
  /** Recorded events absent from the stream. */
  readonly missing: number;
  /** Messages whose eventId the outbox does not hold. */
  readonly foreign: number;
  /** Messages whose Nats-Msg-Id is not their eventId, or whose subject is not their type's. */
  readonly malformed: number;
  /** Orders whose events are in the stream out of their recorded order, or not paid → refunded… → cancelled. */
  readonly outOfOrder: number;
  readonly byType: Record<string, number>;
  readonly examples: string[];
}

interface Message {
  readonly seq: number;
  readonly msgId: string | undefined;
  readonly subject: string;
  readonly eventId: string;
  readonly type: string;
}

async function readStream(natsUrl: string): Promise<Message[]> {
  const nc = await connect({ servers: natsUrl, timeout: 10_000 });
  try {
    const info = await jetstreamManager(nc).then((jsm) => jsm.streams.info(NATS_STREAM));
    const last = info.state.last_seq;
    const out: Message[] = [];
    if (info.state.messages === 0) return out;
    // An ordered consumer from the first message: the whole stream in sequence, quickly.
    const consumer = await jetstream(nc).consumers.get(NATS_STREAM);
    const messages = await consumer.consume();
    const timer = setTimeout(() => void messages.stop(), 300_000);
    for await (const m of messages) {
      const body = m.json<any>();
      out.push({ seq: m.seq, msgId: m.headers?.get('Nats-Msg-Id'), subject: m.subject, eventId: body.eventId, type: body.type });
      if (m.seq >= last) break;
    }
    clearTimeout(timer);
    return out;
  } finally {
    await nc.close();
  }
}

export async function checkStream(natsUrl: string, pool: pg.Pool): Promise<StreamCheck> {
  const { rows: recorded } = await pool.query<{ event_id: string; event_type: string; aggregate_id: string }>(
    'SELECT event_id::text, event_type, aggregate_id FROM outbox_events ORDER BY seq',
  );
  const messages = await readStream(natsUrl);
  const examples: string[] = [];
  const example = (line: string) => void (examples.length < 8 && examples.push(line));

  const seqOf = new Map<string, number>();
  let duplicates = 0;
  let malformed = 0;
  for (const m of messages) {
    if (seqOf.has(m.eventId)) {
      duplicates++;
      example(`eventId ${m.eventId} at ${seqOf.get(m.eventId)} and again at ${m.seq}`);
    } else seqOf.set(m.eventId, m.seq);
    if (m.msgId !== m.eventId || m.subject !== NATS_SUBJECTS[m.type as keyof typeof NATS_SUBJECTS]) {
      malformed++;
      example(`message ${m.seq}: Nats-Msg-Id ${m.msgId}, eventId ${m.eventId}, subject ${m.subject}, type ${m.type}`);
    }
  }
  const recordedIds = new Set(recorded.map((e) => e.event_id));
  const missing = recorded.filter((e) => !seqOf.has(e.event_id));
  for (const e of missing.slice(0, 3)) example(`${e.event_type} ${e.event_id} of order ${e.aggregate_id}: not in the stream`);
  const foreign = [...seqOf.keys()].filter((id) => !recordedIds.has(id));
  for (const id of foreign.slice(0, 3)) example(`message with eventId ${id}: not in the outbox`);

  // Per order, in recorded order: stream sequence rising, and paid, then refunds, then at most a cancellation.
  const lastOf = new Map<string, { type: string; seq: number }>();
  const broken = new Set<string>();
  for (const e of recorded) {
    const seq = seqOf.get(e.event_id);
    if (seq === undefined) continue;
    const before = lastOf.get(e.aggregate_id);
    const allowed = before === undefined ? e.event_type === 'order.paid' : before.type !== 'order.cancelled' && e.event_type !== 'order.paid';
    if (!allowed || (before && before.seq >= seq)) {
      if (!broken.has(e.aggregate_id)) example(`order ${e.aggregate_id}: ${e.event_type} at ${seq} after ${before ? `${before.type} at ${before.seq}` : 'nothing'}`);
      broken.add(e.aggregate_id);
    }
    lastOf.set(e.aggregate_id, { type: e.event_type, seq });
  }
  const byType: Record<string, number> = {};
  for (const m of messages) byType[m.type] = (byType[m.type] ?? 0) + 1;
  return {
    recorded: recorded.length,
    messages: messages.length,
    distinct: seqOf.size,
    duplicates,
    missing: missing.length,
    foreign: foreign.length,
    malformed,
    outOfOrder: broken.size,
    byType,
    examples,
  };
}
