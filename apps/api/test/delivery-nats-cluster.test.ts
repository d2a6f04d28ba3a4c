import { afterEach, expect, test } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { DUPLICATE_WINDOW_MS, NATS_STREAM, NATS_SUBJECTS } from '@shop/adapters-dataplatform';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { Client, secretBytes, type Reply } from '../../../test/support/http.ts';
import { assertInvariants, outcomes } from '../../../test/support/invariants.ts';
import { natsServerForTests, startNatsCluster } from '../../../test/support/nats-cluster.ts';
import { startApiProcess } from '../../../test/support/processes.ts';

/**
 * Past one machine: a three-node JetStream cluster (local nats-server processes), a stream of three
 * replicas, two API processes each given all three nodes. Under a load of orders and cancellations
 * the stream's leader is SIGKILLed, the load goes on, the node is restarted with its store and made
 * the leader again. Events already stored are sent again on each side of the kill, as after a lost
 * acknowledgement. In the stream: every order.paid and order.cancelled the outbox recorded, once
 * each (the eventId is the message id, and the duplicate window drops the retries, on the new
 * leader and on the restarted one), nothing else, and each order's order.cancelled after its
 * order.paid. Real PostgreSQL, real processes.
 */
const bin = natsServerForTests();

/** What the test started, undone after it (last first), whatever happened. */
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const undo of cleanups.splice(0).reverse()) await undo().catch((err) => errors.push(err));
  if (errors.length > 0) throw errors[0];
});

type Buyer = { userId: number; token: string };
type EventRow = { event_id: string; event_type: string; aggregate_id: string; delivered_at: Date | null };

/**
 * Keeps `workers` buyers' requests in flight, spread over the API processes, until stop(): each
 * places an order of two units, refunds one and cancels the rest of every third at once, and every
 * fifth cancels its previous order (whose order.paid may well be delivered by then). Every reply
 * is kept; a failed transport as null.
 */
function orderLoad(clients: Client[], buyers: Buyer[], productId: number, workers: number) {
  const placed: Array<Reply | null> = [];
  const cancelled: Array<Reply | null> = [];
  const refunded: Array<Reply | null> = [];
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    const buyer = buyers[w % buyers.length]!;
    let previous: string | null = null;
    for (let i = 0; running; i++) {
      const client = clients[(w + i) % clients.length]!;
      const reply = await client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 2 }] }, { token: buyer.token }).catch(() => null);
      placed.push(reply);
      const orderId = reply?.status === 201 ? (reply.body.orderId as string) : null;
      const cancel = (id: string) => client.request('POST', `/orders/${id}/cancel`, undefined, { token: buyer.token }).catch(() => null);
      if (orderId && i % 3 === 0) {
        const items = [{ productId, quantity: 1 }];
        refunded.push(await client.post(`/orders/${orderId}/refunds`, { items }, { token: buyer.token }).catch(() => null));
        cancelled.push(await cancel(orderId));
      } else if (previous && i % 5 === 4) {
        cancelled.push(await cancel(previous));
      }
      previous = orderId && i % 3 !== 0 ? orderId : null;
    }
  });
  return {
    placed,
    cancelled,
    refunded,
    /** Orders answered so far (any answer). */
    get count() {
      return placed.length;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

type Delivered = { event_id: string; event_type: string; aggregate_id: string; attempts: number };

/** Delivered events: stored in the stream, as far as the outbox knows. */
const deliveredEvents = (tdb: TestDatabase) =>
  tdb.query<Delivered>(
    'SELECT event_id::text, event_type, aggregate_id, attempts FROM outbox_events WHERE delivered_at IS NOT NULL ORDER BY seq',
  );

/**
 * About `n` of `events`, spread over them: order.cancelled events and the order.paid of those same
 * orders (an order.paid stored again after its order.cancelled would break their order too), the
 * rest other order.paid events.
 */
function sample(events: Delivered[], n: number): Delivered[] {
  const spread = (from: Delivered[], k: number) =>
    k <= 0 ? [] : from.filter((_, i) => i % Math.max(1, Math.floor(from.length / k)) === 0).slice(0, k);
  const cancelled = spread(events.filter((e) => e.event_type === 'order.cancelled'), Math.floor(n / 2));
  const orders = new Set(cancelled.map((e) => e.aggregate_id));
  const paid = events.filter((e) => e.event_type === 'order.paid');
  const paidOfThose = paid.filter((e) => orders.has(e.aggregate_id));
  return [...cancelled, ...paidOfThose, ...spread(paid.filter((e) => !orders.has(e.aggregate_id)), n - cancelled.length - paidOfThose.length)];
}

/** Sends events again with the admin's redeliver (same eventId, as after a lost acknowledgement). */
async function redeliver(client: Client, events: Array<{ event_id: string }>) {
  for (const e of events) expect((await client.post(`/admin/events/${e.event_id}/redeliver`, {})).status).toBe(202);
  return events.map((e) => e.event_id);
}

/** Stream info once the stream has a leader: during an election the request may fail or name none. */
async function leaderInfo(jsm: JetStreamManager, what: string, accept: (info: StreamInfo) => boolean = () => true): Promise<StreamInfo> {
  let info: StreamInfo | null = null;
  await eventually(
    async () => {
      info = await jsm.streams.info(NATS_STREAM).catch(() => null);
      return Boolean(info?.cluster?.leader) && accept(info!);
    },
    what,
    60_000,
    100,
  );
  return info!;
}

test.skipIf(!bin)(
  'three-node cluster, stream leader SIGKILLed and restarted under load: every event in the stream exactly once, each order\'s in the order recorded (paid, refunded, cancelled)',
  async () => {
    const cluster = await startNatsCluster(bin!, 3);
    cleanups.push(() => cluster.stop());
    const tdb: TestDatabase = await createTestDatabase();
    cleanups.push(() => tdb.drop());

    // Short timeouts and retries: a publish an election leaves unanswered fails within a second and
    // is tried again soon; the lease past two timeouts, as the service requires.
    const env = {
      NATS_STREAM_REPLICAS: '3',
      DATA_PLATFORM_TIMEOUT_MS: '1000',
      OUTBOX_LEASE_MS: '3000',
      OUTBOX_RETRY_BASE_MS: '50',
      OUTBOX_RETRY_MAX_MS: '500',
      OUTBOX_POLL_MS: '200',
    };
    const procs = [
      await startApiProcess(tdb.url, { ...env, DATA_PLATFORM_URL: cluster.urls.join(',') }),
      await startApiProcess(tdb.url, { ...env, DATA_PLATFORM_URL: [...cluster.urls].reverse().join(',') }),
    ];
    cleanups.push(() => Promise.all(procs.map((p) => p.stop('SIGKILL'))));
    const admin = await signToken(secretBytes, { admin: true });
    const clients = procs.map((p) => new Client(p.url, admin));

    const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc, { timeout: 2_000 });

    const stock = new Map<number, number>();
    const productId = await clients[0]!.createProduct(10, 1_000_000);
    stock.set(productId, 1_000_000);
    const buyers = await Promise.all(Array.from({ length: 12 }, () => clients[0]!.createUser(100_000_000)));

    const load = orderLoad(clients, buyers, productId, 12);
    cleanups.push(() => load.stop());
    await eventually(() => load.count >= 150, '150 orders before the kill', 60_000);

    // The worst node to lose: the one leading the stream's replicas.
    const created = await leaderInfo(jsm, 'the stream created by the service, with a leader');
    expect(created.config.num_replicas).toBe(3);
    expect(created.config.duplicate_window).toBe(DUPLICATE_WINDOW_MS * 1e6);
    const victim = created.cluster!.leader!;
    // Enough delivered to send 20 and 10 of them again below (delivery trails the orders on a busy machine).
    await eventually(async () => (await deliveredEvents(tdb)).length >= 100, '100 events delivered before the kill', 60_000, 100);
    const storedBeforeKill = await deliveredEvents(tdb);
    await cluster.kill(victim);

    // The other two elect a leader and keep storing events while the load goes on. Events the old
    // leader stored are sent again (as after a lost acknowledgement): the new leader must drop them.
    const survivors = await leaderInfo(jsm, 'a new stream leader among the survivors', (i) => i.cluster!.leader !== victim);
    const resent = await redeliver(clients[0]!, sample(storedBeforeKill, 20));
    const seqWhileDown = survivors.state.last_seq;
    await eventually(
      async () => ((await jsm.streams.info(NATS_STREAM).catch(() => null))?.state.last_seq ?? 0) >= seqWhileDown + 100,
      '100 more events stored by the two survivors',
      60_000,
      100,
    );
    await eventually(() => load.count >= 350, '350 orders before the restart', 60_000);
    const before = new Set(storedBeforeKill.map((e) => e.event_id));
    const deliveredWhileDown = async () => (await deliveredEvents(tdb)).filter((e) => !before.has(e.event_id));
    // As many delivered by the survivors as are sent again below: a CI run once had too few (22 sent again, not 40).
    await eventually(async () => (await deliveredWhileDown()).length >= 60, '60 events delivered while the node was down', 60_000, 100);
    const storedWhileDown = await deliveredWhileDown();
    await cluster.restart(victim);

    // Once it has caught up, the restarted node is made the stream's leader (a leader steps down to a
    // random current peer; asked again until it is the one), and events stored while it was dead,
    // which it only has from catching up, are sent again: it must drop them too.
    await leaderInfo(jsm, 'the restarted node a current replica', (i) => (i.cluster!.replicas ?? []).some((r) => r.name === victim && r.current));
    for (let tries = 0; (await leaderInfo(jsm, 'a stream leader')).cluster!.leader !== victim; tries++) {
      if (tries === 30) throw new Error(`the restarted node ${victim} never became the stream leader\n${cluster.logs()}`);
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${NATS_STREAM}`, '', { timeout: 2_000 }).catch(() => null);
      await leaderInfo(jsm, 'a stream leader after stepping down');
    }
    resent.push(...(await redeliver(clients[1]!, [...sample(storedWhileDown, 20), ...sample([...storedBeforeKill].reverse(), 10)])));

    const countNow = load.count;
    await eventually(() => load.count >= countNow + 200, '200 orders more with the restarted node leading', 60_000);
    await load.stop();

    // Every request answered as the contract says: the platform's trouble is not the buyer's.
    const placed = load.placed.filter((r): r is Reply => r !== null && r.status === 201);
    expect(outcomes(load.placed.map((r) => r ?? { status: 599, body: { code: 'NO_ANSWER' } })), 'order replies').toEqual({ '201': load.placed.length });
    expect(
      load.cancelled.map((r) => (r?.status === 200 ? r.body.status : `${r?.status ?? 'no answer'} ${r?.body?.code ?? ''}`)),
      'cancel replies',
    ).toEqual(load.cancelled.map(() => 'CANCELLED'));
    expect(load.refunded.map((r) => (r?.status === 201 ? r.body.order.status : `${r?.status ?? 'no answer'} ${r?.body?.code ?? ''}`)), 'refund replies').toEqual(
      load.refunded.map(() => 'PARTIALLY_REFUNDED'),
    );
    expect(placed.length).toBeGreaterThanOrEqual(550);
    expect(load.cancelled.length).toBeGreaterThanOrEqual(100);

    const undelivered = async () => (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL'))[0]!.n;
    await eventually(async () => (await undelivered()) === 0, 'the outbox fully delivered', 120_000, 200);
    // The restarted node rejoined as a current replica of the stream.
    const final = await leaderInfo(jsm, 'the restarted node a current replica', (i) =>
      [i.cluster!.leader, ...(i.cluster!.replicas ?? []).filter((r) => r.current).map((r) => r.name)].includes(victim),
    );

    // The events sent again were published again (an attempt more than when they were first
    // delivered), and the checks below find each of them once in the stream.
    expect(resent.length).toBeGreaterThanOrEqual(40);
    const attemptsNow = new Map((await deliveredEvents(tdb)).map((e) => [e.event_id, e.attempts]));
    const firstAttempts = new Map([...storedBeforeKill, ...storedWhileDown].map((e) => [e.event_id, e.attempts]));
    expect(resent.filter((id) => !(attemptsNow.get(id)! > firstAttempts.get(id)!)), 'sent again but not published again').toEqual([]);

    const recorded = await tdb.query<EventRow>('SELECT event_id::text, event_type, aggregate_id, delivered_at FROM outbox_events ORDER BY seq');
    const byId = new Map(recorded.map((e) => [e.event_id, e]));
    // Every answered order and cancellation has its event recorded (and only those).
    expect(recorded.filter((e) => e.event_type === 'order.paid').map((e) => e.aggregate_id).sort()).toEqual(placed.map((r) => r.body.orderId).sort());
    expect(recorded.filter((e) => e.event_type === 'order.cancelled').map((e) => e.aggregate_id).sort()).toEqual(
      load.cancelled.map((r) => r!.body.orderId).sort(),
    );
    expect(recorded.filter((e) => e.event_type === 'order.refunded').map((e) => e.aggregate_id).sort()).toEqual(
      load.refunded.map((r) => r!.body.orderId).sort(),
    );

    // Every message of the stream, by sequence.
    const last = final.state.last_seq;
    const messages: Array<{ seq: number; id: string | undefined; subject: string; body: any }> = [];
    let next = 1;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next <= last) {
          const seq = next++;
          let m: Awaited<ReturnType<typeof jsm.streams.getMessage>> = null;
          await eventually(
            async () => {
              m = await jsm.streams.getMessage(NATS_STREAM, { seq }).catch(() => null);
              return m !== null;
            },
            `stream message ${seq}`,
            30_000,
            100,
          );
          messages.push({ seq, id: m!.header?.get('Nats-Msg-Id'), subject: m!.subject, body: m!.json<any>() });
        }
      }),
    );
    messages.sort((a, b) => a.seq - b.seq);
    expect(final.state.messages, 'messages held vs last sequence (none deleted)').toBe(last);

    // Exactly once: one message per recorded event, none twice, none the outbox does not hold.
    expect(messages.filter((m) => m.id !== m.body.eventId), 'messages whose Nats-Msg-Id is not their eventId').toEqual([]);
    const ids: string[] = messages.map((m) => m.body.eventId);
    const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
    expect(twice, 'eventIds stored more than once').toEqual([]);
    expect(ids.filter((id) => !byId.has(id)), 'messages the outbox does not hold').toEqual([]);
    expect([...ids].sort(), 'every recorded event in the stream').toEqual([...byId.keys()].sort());
    expect(messages.length).toBe(recorded.length);
    for (const m of messages) {
      const e = byId.get(m.body.eventId)!;
      expect(m.subject).toBe(NATS_SUBJECTS[e.event_type as keyof typeof NATS_SUBJECTS]);
      expect(m.body).toMatchObject({ type: e.event_type, data: { orderId: e.aggregate_id } });
    }

    // Per order, its events in the stream in the order recorded (order.paid, order.refunded, order.cancelled).
    const seqOf = new Map(messages.map((m) => [m.body.eventId as string, m.seq]));
    const lastSeqOf = new Map<string, { type: string; seq: number }>();
    const reordered: string[] = [];
    for (const e of recorded) {
      const seq = seqOf.get(e.event_id)!;
      const before = lastSeqOf.get(e.aggregate_id);
      if (before && !(before.seq < seq)) reordered.push(`${e.aggregate_id}: ${e.event_type} at ${seq}, after ${before.type} at ${before.seq}`);
      lastSeqOf.set(e.aggregate_id, { type: e.event_type, seq });
    }
    expect(reordered, "events stored in the stream before an earlier event of their order").toEqual([]);
    expect(recorded.filter((e) => e.event_type === 'order.refunded').length).toBeGreaterThanOrEqual(100);

    await assertInvariants(tdb, stock);
    for (const p of procs) expect(await p.stop('SIGTERM')).toBe(0);
  },
  300_000,
);
