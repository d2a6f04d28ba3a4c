import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { EventPublisher, OutboxRecord } from '@shop/application';

export const NATS_SUBJECT = 'orders.paid';
export const NATS_STREAM = 'ORDERS';
/** Redeliveries can come long after the first try (an outage); JetStream must still drop them. */
const DUPLICATE_WINDOW_NS = 24 * 3600 * 1e9;

export interface NatsPublisherOptions {
  readonly timeoutMs: number;
  readonly stream?: string;
  readonly subject?: string;
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
      const subject = this.options.subject ?? NATS_SUBJECT;
      try {
        await jsm.streams.info(stream);
      } catch {
        await jsm.streams.add({ name: stream, subjects: [subject], duplicate_window: DUPLICATE_WINDOW_NS });
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
    await js.publish(this.options.subject ?? NATS_SUBJECT, JSON.stringify(record.payload), {
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
