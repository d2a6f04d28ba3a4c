import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { EventPublisher, OutboxRecord } from '@shop/application';

/** An event's subject is its type's: order.paid on orders.paid, order.cancelled on orders.cancelled. */
export const NATS_SUBJECTS = { 'order.paid': 'orders.paid', 'order.cancelled': 'orders.cancelled' } as const;
export const NATS_SUBJECT = NATS_SUBJECTS['order.paid'];
export const NATS_STREAM = 'ORDERS';
/** Redeliveries can come long after the first try (an outage); JetStream must still drop them. */
const DUPLICATE_WINDOW_NS = 24 * 3600 * 1e9;

export interface NatsPublisherOptions {
  readonly timeoutMs: number;
  readonly stream?: string;
}

/**
 * Publishes to JetStream with the eventId as message id, so the stream's duplicate window drops
 * a redelivery. Connects on first use and again after a failure: NATS being down must not stop
 * the API from starting or taking orders; the relay just retries.
 */
export class NatsEventPublisher implements EventPublisher {
  private readonly servers: string;
  private readonly options: NatsPublisherOptions;
  private connection: Promise<{ nc: NatsConnection; js: JetStreamClient }> | null = null;

  constructor(url: string, options: NatsPublisherOptions) {
    this.servers = url;
    this.options = options;
  }

  private connect() {
    this.connection ??= (async () => {
      const nc = await connect({ servers: this.servers, timeout: this.options.timeoutMs, maxReconnectAttempts: -1 });
      const jsm = await jetstreamManager(nc, { timeout: this.options.timeoutMs });
      const stream = this.options.stream ?? NATS_STREAM;
      const subjects: string[] = Object.values(NATS_SUBJECTS);
      // One stream for both subjects: its sequence is the order consumers read, and the relay
      // publishes an order's order.cancelled only after its order.paid was stored (ADR 0008).
      // A stream created before cancellations carried only orders.paid; it gains the new subject.
      let info;
      try {
        info = await jsm.streams.info(stream);
      } catch {
        await jsm.streams.add({ name: stream, subjects, duplicate_window: DUPLICATE_WINDOW_NS });
      }
      const missing = info ? subjects.filter((s) => !info.config.subjects?.includes(s)) : [];
      if (info && missing.length > 0) {
        await jsm.streams.update(stream, { subjects: [...(info.config.subjects ?? []), ...missing] });
      }
      return { nc, js: jetstream(nc, { timeout: this.options.timeoutMs }) };
    })().catch((err) => {
      this.connection = null;
      throw err;
    });
    return this.connection;
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
