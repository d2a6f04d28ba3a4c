import { randomUUID } from 'node:crypto';
import { afterEach, expect, test } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { NATS_STREAM, NATS_SUBJECTS } from '@shop/adapters-dataplatform';
import { eventually, startNatsCluster } from '../src/index.ts';
import { killLeaderAndRestart, receivedOnce, streamConsumer, streamLeader } from '../src/bench/index.ts';
import { natsServerForTests } from '../../../test/support/nats-cluster.ts';

/**
 * The nats-cluster workload's fault and consumer, on real nats-server processes: a stream of three
 * replicas, a publisher sending each message with its id until stored (as the relay does), the
 * node leading the stream SIGKILLed, another elected, the node started again with its store and
 * caught up; the durable consumer reads every stored message, each stream message once per id.
 */
const bin = natsServerForTests();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => undefined);
});

test.skipIf(!bin)('the stream leader killed and restarted under publishing: another leads meanwhile, it catches up, the consumer misses nothing', async () => {
  const cluster = await startNatsCluster(bin!, 3, 'fault-test');
  cleanups.push(() => cluster.stop());
  const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  cleanups.push(() => nc.close());
  const jsm = await jetstreamManager(nc, { timeout: 2_000 });
  await jsm.streams.add({ name: NATS_STREAM, subjects: Object.values(NATS_SUBJECTS), num_replicas: 3 });
  const consumer = streamConsumer(cluster.urls);
  cleanups.push(() => consumer.stop());

  const js = jetstream(nc, { timeout: 1_000 });
  const stored: string[] = [];
  let running = true;
  const publisher = (async () => {
    for (let i = 0; running; i++) {
      const eventId = randomUUID();
      const body = JSON.stringify({ eventId, type: 'order.paid', data: { orderId: `order-${i}` } });
      while (!(await js.publish(NATS_SUBJECTS['order.paid'], body, { msgID: eventId }).then(() => true, () => false))) await sleep(100);
      stored.push(eventId);
      await sleep(5);
    }
  })();
  cleanups.push(() => ((running = false), publisher));

  const leader = await streamLeader(jsm);
  const from = Date.now();
  const fault = await killLeaderAndRestart(cluster, jsm, from, 500, 1_500);
  expect(fault.node, 'the node killed is the one that led the stream').toBe(leader);
  expect(fault.killedAtS).toBeGreaterThanOrEqual(0.5);
  expect(fault.newLeaderAtS).toBeGreaterThanOrEqual(fault.killedAtS);
  expect(fault.restartedAtS).toBeGreaterThanOrEqual(Math.max(1.5, fault.newLeaderAtS));
  expect(cluster.node(fault.node).running).toBe(true);
  expect(await streamLeader(jsm), 'a leader that lived through the kill').not.toBe('');
  const storedBeforeRestart = stored.length;
  await eventually(
    async () => ((await jsm.streams.info(NATS_STREAM).catch(() => null))?.cluster?.replicas ?? []).some((r) => r.name === fault.node && r.current),
    `${fault.node} caught up with the stream\n${cluster.logs()}`,
    60_000,
    100,
  );
  await eventually(() => stored.length >= storedBeforeRestart + 50, '50 more messages stored with the node back', 30_000);
  running = false;
  await publisher;

  await eventually(() => receivedOnce(stored, consumer.reads.map((r) => r.eventId)).missing === 0, 'the consumer to read every stored message', 60_000);
  const reads = consumer.reads;
  const once = receivedOnce(stored, reads.map((r) => r.eventId));
  expect(once.invented).toBe(0);
  const seqsOf = new Map<string, Set<number>>();
  for (const r of reads) seqsOf.set(r.eventId, (seqsOf.get(r.eventId) ?? new Set()).add(r.seq));
  expect([...seqsOf.values()].filter((seqs) => seqs.size > 1).length, 'an id stored twice').toBe(0);
  expect(reads.every((r) => r.msgId === r.eventId && r.storedMs > 0 && r.readMs >= r.storedMs - 1_000)).toBe(true);
});
