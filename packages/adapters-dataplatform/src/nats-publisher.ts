import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { EventPublisher, OutboxRecord } from '@shop/application';

/** An event's subject is its type's: order.paid on orders.paid, order.refunded on orders.refunded, order.cancelled on orders.cancelled. */
export const NATS_SUBJECTS = { 'order.paid': 'orders.paid', 'order.refunded': 'orders.refunded', 'order.cancelled': 'orders.cancelled' } as const;
export const NATS_SUBJECT = NATS_SUBJECTS['order.paid'];
export const NATS_STREAM = 'ORDERS';
/**
 * JetStream's duplicate window on the stream the service creates: how long after it first stored
 * an eventId it drops another publish of it (counted from that first store; a dropped duplicate
 * does not extend it). It must hold every retry of an event already stored whose acknowledgement
 * was lost (a timeout, a killed stream leader, a killed relay).
 *
 * The relay's schedule (packages/application/src/relay, apps/api/src/config.ts): a failed attempt
 * gives up after T = DATA_PLATFORM_TIMEOUT_MS and is due again within OUTBOX_RETRY_MAX_MS (the
 * backoff's cap; its jitter only shortens it); a relay killed mid-attempt leaves it leased for
 * OUTBOX_LEASE_MS. It is claimed again within OUTBOX_POLL_MS of being due, after the batch in
 * flight, which is at most ceil(100 records / 16 at once) = 7 × T. So while the cluster answers,
 * the next attempt after a stored one comes within
 *   T + max(retry cap, lease) + poll + 7 × T
 *   = 5 + 60 + 1 + 35 = 101 s with the defaults,
 *   = 60 + 3600 + 60 + 420 = 4140 s (69 min) with every setting at its allowed maximum.
 * While the cluster (or every relay) is down, attempts keep failing, and the retry that finally
 * lands comes up to that long after the outage ends. So the window is the outage the stream rides
 * out without storing an event twice, plus that gap: 24 h rides out 23 h 58 min with the defaults,
 * 22 h 51 min with the maxima.
 *
 * Its cost: the window holds one id per event stored in the last 24 h, on every server with a
 * replica (each keeps its own map, nats-server's stream.go storeMsgIdLocked): ids/s × window =
 * 1,000 × 86,400 s = 86.4 M ids at 1,000 events/s; at 147 bytes of Go heap per id (measured on
 * nats-server 2.9.10 by apps/bench/src/nats-dedupe-memory.ts, docs/scaling.md) that is 11.8 GiB
 * live heap per replica. An operator may shorten it on the stream: the service leaves an existing
 * stream's window as it is, and a retry after an outage longer than the window is then stored
 * again (consumers deduplicate by eventId anyway, docs/delivery.md).
 */
export const DUPLICATE_WINDOW_MS = 24 * 3600 * 1000;

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
      await jsm.streams.add({ name: stream, subjects, duplicate_window: DUPLICATE_WINDOW_MS * 1e6, num_replicas: this.options.replicas ?? 1 });
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
