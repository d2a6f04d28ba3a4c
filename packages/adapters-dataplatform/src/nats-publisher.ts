import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { EventPublisher, OutboxRecord } from '@shop/application';

/** An event's subject is its type's: order.paid on orders.paid, order.refunded on orders.refunded, order.cancelled on orders.cancelled. */
export const NATS_SUBJECTS = { 'order.paid': 'orders.paid', 'order.refunded': 'orders.refunded', 'order.cancelled': 'orders.cancelled' } as const;
export const NATS_SUBJECT = NATS_SUBJECTS['order.paid'];
export const NATS_STREAM = 'ORDERS';
/** Redeliveries can come long after the first try (an outage); JetStream must still drop them. */
const DUPLICATE_WINDOW_NS = 24 * 3600 * 1e9;

export interface NatsPublisherOptions {
  readonly timeoutMs: number;
  readonly stream?: string;
  /** Replicas of the stream it creates: 1 on one server, 3 in a cluster (NATS_STREAM_REPLICAS). */
  readonly replicas?: number;
}

/**
 * Publishes to JetStream with the eventId as message id, so the stream's duplicate window drops
 * a redelivery. Connects on first use and again after a failure: NATS being down must not stop
 * the API from starting or taking orders; the relay just retries.
 */
export class NatsEventPublisher implements EventPublisher {
  private readonly servers: readonly string[];
  private readonly options: NatsPublisherOptions;
  private connection: Promise<{ nc: NatsConnection; js: JetStreamClient }> | null = null;

  /** `servers`: the nodes of one cluster; the client connects to any that answers and fails over. */
  constructor(servers: string | readonly string[], options: NatsPublisherOptions) {
    this.servers = typeof servers === 'string' ? [servers] : servers;
    this.options = options;
  }

  private connect() {
    this.connection ??= (async () => {
      const nc = await connect({ servers: [...this.servers], timeout: this.options.timeoutMs, maxReconnectAttempts: -1 });
      try {
        await this.ensureStream(nc);
        return { nc, js: jetstream(nc, { timeout: this.options.timeoutMs }) };
      } catch (err) {
        await nc.close().catch(() => undefined);
        throw err;
      }
    })().catch((err) => {
      this.connection = null;
      throw err;
    });
    return this.connection;
  }

  /**
   * One stream for every subject: its sequence is the order consumers read, and the relay
   * publishes an order's order.refunded and order.cancelled only after the event before it was
   * stored (ADR 0008). A stream created by an earlier release lacks the newer subjects; it gains
   * them. If it may not be changed (an account without the right, a stream managed elsewhere),
   * order.paid keeps flowing: only the events of a missing subject then fail, retried and shown in
   * GET /admin/events, until an operator adds the subject.
   */
  private async ensureStream(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc, { timeout: this.options.timeoutMs });
    const stream = this.options.stream ?? NATS_STREAM;
    const subjects: string[] = Object.values(NATS_SUBJECTS);
    let info;
    try {
      info = await jsm.streams.info(stream);
    } catch {
      await jsm.streams.add({ name: stream, subjects, duplicate_window: DUPLICATE_WINDOW_NS, num_replicas: this.options.replicas ?? 1 });
      return;
    }
    const held = info.config.subjects ?? [];
    const missing = subjects.filter((s) => !held.some((pattern) => subjectMatches(pattern, s)));
    if (missing.length === 0) return;
    await jsm.streams.update(stream, { subjects: [...held, ...missing] }).catch(() => undefined);
  }

  async publish(record: OutboxRecord): Promise<void> {
    const { js } = await this.connect();
    const subject = NATS_SUBJECTS[record.type as keyof typeof NATS_SUBJECTS];
    if (!subject) throw new Error(`no NATS subject for events of type ${record.type}`);
    await js.publish(subject, JSON.stringify(record.payload), {
      msgID: record.eventId,
      timeout: this.options.timeoutMs,
    });
  }

  async close(): Promise<void> {
    const open = this.connection;
    this.connection = null;
    if (open) await (await open.catch(() => null))?.nc.drain().catch(() => undefined);
  }
}

/** NATS subject matching: `*` is one token, a trailing `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const t = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return i === p.length - 1 && t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}
