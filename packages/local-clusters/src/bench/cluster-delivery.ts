import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager } from '@nats-io/jetstream';
import { NATS_STREAM } from '@shop/adapters-dataplatform';
import { eventsAfter, lastEventSeq, waitForDelivery } from '@shop/adapters-postgres/bench';
import { eventually } from '../eventually.ts';
import { findNatsServer, startNatsCluster, type NatsCluster } from '../nats-cluster.ts';
import { fmt, receivedOnce, sleep, spread } from './deliveries.ts';
import type { RunLike, ScalingTarget } from './target.ts';

/**
 * nats-cluster: the service delivers to a three-node JetStream cluster (local nats-server
 * processes, the stream of three replicas it creates), a durable consumer reading the stream as it
 * fills and acknowledging each message. A third into the measured window the node leading the
 * stream is SIGKILLed, at two thirds (or once another leads, if later) restarted with its store.
 * After the load, once the outbox is delivered and the consumer has nothing pending: every event
 * recorded meanwhile read from the stream (lost must be 0), what reached the consumer more than
 * once, and how late events reached the stream: from the outbox record's created_at (its
 * transaction's start, so a little more than from its commit) to the stream's timestamp of the
 * message, and the longest time the stream stored nothing while an event waited.
 */
export interface ClusterDelivery {
  readonly nodes: number;
  /** The node killed, when (s into the window), when the survivors had elected another stream leader, when it was restarted. */
  readonly fault: { readonly node: string; readonly killedAtS: number; readonly newLeaderAtS: number; readonly restartedAtS: number };
  /** Events the outbox recorded during the workload, by type. */
  readonly recorded: number;
  readonly byType: Record<string, number>;
  /** Recorded, never read from the stream. */
  readonly lost: number;
  /** Read from the stream, never recorded. */
  readonly invented: number;
  /** Messages the consumer read: all, beyond the first of their eventId, and of those redelivered (one stream message read again). */
  readonly read: number;
  readonly duplicatesAtConsumer: number;
  readonly redelivered: number;
  /** Stream messages beyond the first of their eventId (the duplicate window failed). */
  readonly duplicatesInStream: number;
  /** Orders whose order.cancelled precedes their order.paid in the stream. */
  readonly outOfOrder: number;
  /** created_at → stored in the stream, and → read by the consumer, of the events recorded in the window (ms); → stream of those before the kill. */
  readonly toStreamMs: ReturnType<typeof spread>;
  readonly toStreamBeforeKillMs: ReturnType<typeof spread>;
  readonly toConsumerMs: ReturnType<typeof spread>;
  /** The longest time the stream stored nothing while an event waited, from the window's opening until the outbox was delivered; when it began (s). */
  readonly longestStallMs: number;
  readonly stallFromS: number;
}

/** A message as the consumer read it: the stream's sequence and timestamp (ms), the event, when it was read, whether redelivered. */
type Read = {
  seq: number; eventId: string; msgId: string | undefined; type: string; orderId: string; storedMs: number; readMs: number; redelivered: boolean; body: unknown;
};
type Fault = ClusterDelivery['fault'];
type State = {
  readonly t: ScalingTarget; readonly cluster: NatsCluster; readonly afterSeq: number; readonly durationMs: number;
  readonly consumer: ReturnType<typeof streamConsumer>; readonly admin: { nc: NatsConnection; jsm: JetStreamManager };
  window: { from: number; to: number }; fault: Promise<Fault> | null;
};

const CONSUMER = 'bench';

/** A durable consumer of the stream from its first message, acknowledging each as it reads it, across node failures, until stopped. */
export function streamConsumer(urls: readonly string[]) {
  const reads: Read[] = [];
  let [stopped, messages] = [false, null as ConsumerMessages | null];
  const connected = connect({ servers: [...urls], maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const loop = (async () => {
    const nc = await connected;
    const jsm = await jetstreamManager(nc, { timeout: 2_000 });
    // The service creates the stream with its first event.
    const config = { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: 5e9 };
    while (!stopped && !(await jsm.consumers.add(NATS_STREAM, config).then(() => true, () => false))) await sleep(100);
    while (!stopped) {
      try {
        // A pull left on a dead node is noticed by its missing heartbeats: 2 s, not the default 30.
        messages = await (await jetstream(nc).consumers.get(NATS_STREAM, CONSUMER)).consume({ max_messages: 1_000, expires: 2_000, idle_heartbeat: 1_000 });
        for await (const m of messages) {
          const body = m.json<{ eventId: string; type: string; data?: { orderId?: string } }>();
          reads.push({ seq: m.seq, eventId: body.eventId, msgId: m.headers?.get('Nats-Msg-Id'), type: body.type, orderId: body.data?.orderId ?? '',
            storedMs: Number(m.timestampNanos / 1_000_000n), readMs: Date.now(), redelivered: m.redelivered, body });
          m.ack();
        }
      } catch {
        if (!stopped) await sleep(200); // its node went away mid-pull: pull again from whichever answers
      }
    }
  })();
  loop.catch(() => undefined); // a failure to connect surfaces as nothing read, awaited by stop()
  return {
    reads,
    async stop() {
      stopped = true;
      messages?.stop();
      await loop.catch(() => undefined);
      await (await connected.catch(() => null))?.close().catch(() => undefined);
    },
  };
}

/** The stream's leader once it has one other than `not` (during an election there is none, or the request fails). */
export async function streamLeader(jsm: JetStreamManager, not = ''): Promise<string> {
  let leader = '';
  const elected = async () => ![not, ''].includes((leader = (await jsm.streams.info(NATS_STREAM).catch(() => null))?.cluster?.leader ?? ''));
  await eventually(elected, `a stream leader${not && ` other than ${not}`}`, 60_000, 100);
  return leader;
}

/**
 * The workload's fault: `killAtMs` after `from` (epoch ms) the node leading the stream is SIGKILLed; once the survivors have
 * elected another leader, and no sooner than `restartAtMs` after `from`, it is started again with its store. Its times in s after `from`.
 */
export async function killLeaderAndRestart(cluster: NatsCluster, jsm: JetStreamManager, from: number, killAtMs: number, restartAtMs: number): Promise<Fault> {
  const at = (ms: number) => sleep(Math.max(0, from + ms - Date.now()));
  await at(killAtMs);
  const node = await streamLeader(jsm);
  const killed = Date.now();
  await cluster.kill(node);
  await streamLeader(jsm, node);
  const elected = Date.now();
  await at(restartAtMs);
  await cluster.restart(node);
  const [k, e, r] = [killed, elected, Date.now()].map((ms) => Math.round((ms - from) / 10) / 100);
  return { node, killedAtS: k!, newLeaderAtS: e!, restartedAtS: r! };
}

/** The workload's hooks (apps/bench/src/workloads.ts). */
export const clusterDeliveryWorkload = {
  async before(t: ScalingTarget, _fixture: unknown, o: { timed: { durationMs: number } }): Promise<State> {
    const bin = findNatsServer();
    if (!bin) throw new Error('nats-cluster needs nats-server (NATS_SERVER_BIN, the PATH, /usr/sbin or /usr/local/bin)');
    if (!t.receiver) throw new Error('nats-cluster needs the benchmark to start the service (no --url)');
    const cluster = await startNatsCluster(bin, 3, 'bench');
    // What the service recorded so far has reached the run's receiver; what it records from now on goes to the cluster.
    await waitForDelivery(t.pool);
    const afterSeq = await lastEventSeq(t.pool);
    await t.restart({ DATA_PLATFORM_URL: cluster.urls.join(','), NATS_STREAM_REPLICAS: '3' });
    const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    const admin = { nc, jsm: await jetstreamManager(nc, { timeout: 2_000 }) };
    return { t, cluster, afterSeq, durationMs: o.timed.durationMs, consumer: streamConsumer(cluster.urls), admin, window: { from: 0, to: 0 }, fault: null };
  },
  /** As the window opens: the stream leader killed a third into it, restarted at two thirds. */
  edge(state: unknown): void {
    const s = state as State;
    if (s.fault) return void (s.window.to = Date.now());
    s.window.from = Date.now();
    s.fault = killLeaderAndRestart(s.cluster, s.admin.jsm, s.window.from, s.durationMs / 3, (s.durationMs * 2) / 3);
    s.fault.catch(() => undefined); // awaited by after(), which reports its failure
  },
  async after(state: unknown): Promise<{ clusterDelivery: ClusterDelivery }> {
    const { t, cluster, consumer, admin, window, afterSeq, ...s } = state as State;
    try {
      const fault = await s.fault!;
      await waitForDelivery(t.pool);
      const last = (await admin.jsm.streams.info(NATS_STREAM)).state.last_seq;
      await eventually(async () => {
        const c = await admin.jsm.consumers.info(NATS_STREAM, CONSUMER).catch(() => null);
        return c !== null && c.delivered.stream_seq >= last && c.num_pending === 0 && c.num_ack_pending === 0;
      }, `the consumer to read and acknowledge the stream's ${last} messages\n${cluster.logs()}`, 120_000, 200);
      const messages = streamMessages(consumer.reads);
      // The run's receiver gets each stream message: its own check then holds these events too to "delivered once", and nothing else.
      for (const m of messages) t.receiver!.accepted.push({ idempotencyKey: m.msgId, body: m.body, at: 0 });
      return { clusterDelivery: figures(await eventsAfter(t.pool, afterSeq), consumer.reads, messages, window, fault) };
    } finally {
      await consumer.stop();
      await admin.nc.close();
      await t.restart({}); // back to the run's receiver
      await cluster.stop();
    }
  },
  check({ run }: { run: RunLike & { clusterDelivery?: ClusterDelivery } }): string[] {
    const c = run.clusterDelivery;
    if (!c) return ['nats-cluster: no figures'];
    return [
      c.lost > 0 && `${fmt(c.lost)} of ${fmt(c.recorded)} recorded events never reached the stream`,
      c.invented > 0 && `${fmt(c.invented)} events in the stream were never recorded`,
      c.duplicatesInStream > 0 && `${fmt(c.duplicatesInStream)} stream messages repeat an eventId within the duplicate window`,
      c.outOfOrder > 0 && `${fmt(c.outOfOrder)} orders' order.cancelled precede their order.paid in the stream`,
    ].flatMap((v) => (v ? [`nats-cluster: ${v}`] : []));
  },
  target({ summary: s, clusterDelivery: c }: RunLike & { clusterDelivery?: ClusterDelivery }): string {
    const d = (x: ReturnType<typeof spread>) => `p50 ${fmt(x.p50)} / p99 ${fmt(x.p99)} / max ${fmt(x.max)} ms`;
    return `nats-cluster (${c!.nodes} nodes, stream of 3 replicas; its leader ${c!.fault.node} SIGKILLed ${fmt(c!.fault.killedAtS)} s into the window, ` +
      `another leading at ${fmt(c!.fault.newLeaderAtS)} s, restarted at ${fmt(c!.fault.restartedAtS)} s): ${fmt(s.ordersPerSecond)} orders/s, ` +
      `${fmt(s.outcomes['200'] ?? 0)} cancels; ` +
      `${fmt(c!.recorded)} events recorded, **lost ${fmt(c!.lost)}**, **duplicates at the consumer ${fmt(c!.duplicatesAtConsumer)}** ` +
      `(${fmt(c!.redelivered)} redelivered, ${fmt(c!.duplicatesInStream)} in the stream); longest stall **${fmt(c!.longestStallMs)} ms** ` +
      `(from ${fmt(c!.stallFromS)} s); created → stream ${d(c!.toStreamMs)} (before the kill ${d(c!.toStreamBeforeKillMs)}); ` +
      `→ consumer ${d(c!.toConsumerMs)}`;
  },
};

/** One entry per stream message, as the consumer first read it, in stream order. */
function streamMessages(reads: readonly Read[]): Read[] {
  const bySeq = new Map<number, Read>();
  for (const r of reads) if (!bySeq.has(r.seq)) bySeq.set(r.seq, r);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

type Recorded = Awaited<ReturnType<typeof eventsAfter>>;
function figures(recorded: Recorded, reads: readonly Read[], messages: readonly Read[], window: State['window'], fault: Fault): ClusterDelivery {
  const once = receivedOnce(recorded.map((e) => e.event_id), reads.map((r) => r.eventId));
  const firstOf = new Map<string, Read>();
  for (const m of messages) if (!firstOf.has(m.eventId)) firstOf.set(m.eventId, m);
  const paidSeq = new Map(messages.filter((m) => m.type === 'order.paid').map((m) => [m.orderId, m.seq]));
  const inWindow = recorded.filter((e) => e.created_ms >= window.from && e.created_ms <= window.to && firstOf.has(e.event_id));
  const toStream = (e: Recorded[number]) => firstOf.get(e.event_id)!.storedMs - e.created_ms;
  // The longest gap between messages stored from the window's opening on (the load ends with the window, the relay's retries after it) while an
  // event recorded before it waited to be stored after it.
  const stored = [window.from, ...messages.map((m) => m.storedMs).filter((ms) => ms > window.from).sort((x, y) => x - y)];
  const gaps = stored.slice(1).map((to, i) => ({ from: stored[i]!, to })).sort((x, y) => y.to - y.from - (x.to - x.from)).slice(0, 200);
  const waited = recorded.map((e) => [e.created_ms, firstOf.get(e.event_id)?.storedMs ?? Infinity] as const);
  const stall = gaps.find((g) => waited.some(([created, at]) => created < g.from && at >= g.to)) ?? { from: window.from, to: window.from };
  const byType: Record<string, number> = {};
  for (const e of recorded) byType[e.type] = (byType[e.type] ?? 0) + 1;
  return {
    nodes: 3, fault, recorded: recorded.length, byType, lost: once.missing, invented: once.invented,
    read: reads.length, duplicatesAtConsumer: once.duplicates, redelivered: reads.length - messages.length, duplicatesInStream: messages.length - firstOf.size,
    outOfOrder: messages.filter((m) => m.type === 'order.cancelled' && !((paidSeq.get(m.orderId) ?? Infinity) < m.seq)).length,
    toStreamMs: spread(inWindow.map(toStream)),
    toStreamBeforeKillMs: spread(inWindow.filter((e) => e.created_ms < window.from + fault.killedAtS * 1000).map(toStream)),
    toConsumerMs: spread(inWindow.map((e) => firstOf.get(e.event_id)!.readMs - e.created_ms)),
    longestStallMs: Math.round(stall.to - stall.from), stallFromS: Math.round((stall.from - window.from) / 100) / 10,
  };
}
