import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { auditInvariants, openDatabase, startEmbeddedPostgres, type EmbeddedDatabase } from '@shop/adapters-postgres';
import { Client, secretBytes, type Reply } from '../../../test/support/http.ts';
import { makeTempDir } from '../../../test/support/temp.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';
import { Receiver } from '../../../test/support/receiver.ts';
import { signToken } from '@shop/adapters-http';

/**
 * PostgreSQL crashes (`pg_ctl stop -m immediate`: SIGQUIT to the postmaster, backends killed
 * mid-transaction, crash recovery at the next start) and comes back on the same port, several
 * times, while buyers keep placing orders. Its own embedded cluster on a fixed port, so the
 * crashes touch no other test's database.
 *
 * The contract under test: an answer never contradicts the database. Every reply is a 201 or a
 * 503 problem; every order answered 201 is stored, and every stored order was answered 201 — no
 * order committed while its client was told 503.
 */
let dir: string;
let database: EmbeddedDatabase;
let port: number;
let api: ApiProcess;
let receiver: Receiver;
/** What the cluster printed, across its restarts: proof that each crash was one. */
const pgLog: string[] = [];
const logTo = (line: string) => void pgLog.push(line);
/** Every product the tests created, with its initial stock, for the invariant audit. */
const initialStock = new Map<number, number>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Crash-restarts per test; each one under load. */
const ROUNDS = 5;
const BUYERS = 16;
/** How long the cluster stays down per round, the load going on (connections refused meanwhile). */
const DOWN_MS = 500;
/** Orders answered 201 after a restart before the next crash: the service has recovered by itself. */
const SERVED_AFTER_RESTART = 30;

beforeAll(async () => {
  dir = makeTempDir('order-service-restart-');
  database = await startEmbeddedPostgres(dir, logTo);
  port = Number(new URL(database.url).port);
  receiver = await new Receiver().start();
  api = await startApiProcess(database.url, {
    DATA_PLATFORM_URL: receiver.url,
    DATABASE_ACQUIRE_TIMEOUT_MS: '1000',
    DATABASE_STATEMENT_TIMEOUT_MS: '3000',
    OUTBOX_POLL_MS: '200',
    // Deliveries that failed while the database was down come back within seconds, not a minute,
    // and so do events whose claim committed just before a crash (redelivered when the lease ends).
    OUTBOX_RETRY_MAX_MS: '2000',
    DATA_PLATFORM_TIMEOUT_MS: '1000',
    OUTBOX_LEASE_MS: '3000',
  });
});
afterAll(async () => {
  await api?.stop();
  await receiver?.stop();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface NetworkError {
  /** Every `code` along the error's cause chain (fetch wraps undici's socket errors). */
  readonly codes: string[];
  readonly message: string;
}

interface Attempt {
  readonly idempotencyKey?: string;
  readonly reply?: Reply;
  /** The client saw no HTTP answer at all. */
  readonly error?: NetworkError;
}

function describeNetworkError(e: unknown): NetworkError {
  const codes: string[] = [];
  const messages: string[] = [];
  for (let c: any = e; c; c = c.cause) {
    if (typeof c.code === 'string') codes.push(c.code);
    messages.push(String(c.message ?? c));
    // happy-eyeballs: one error per address tried
    for (const inner of Array.isArray(c.errors) ? c.errors : []) if (typeof inner?.code === 'string') codes.push(inner.code);
  }
  return { codes, message: messages.join(' <- ') };
}

/** A refused connection never reached the service: it cannot have placed an order. Anything else may have. */
const neverReachedService = (e: NetworkError) => e.codes.includes('ECONNREFUSED') && !e.codes.some((c) => c !== 'ECONNREFUSED');

function countByStatus(attempts: readonly Attempt[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of attempts) {
    const k = a.reply ? String(a.reply.status) : neverReachedService(a.error!) ? 'refused' : 'network-error';
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

async function crashRestartsUnderLoad(variant: 'no key' | 'unique Idempotency-Key') {
  const client = new Client(api.url, await signToken(secretBytes, { admin: true }));
  // Balance for 100,000 orders each and stock for 1,000,000: this load cannot get a business error.
  const buyers = await Promise.all(Array.from({ length: BUYERS }, () => client.createUser(10_000_000)));
  const productId = await client.createProduct(100, 1_000_000);
  initialStock.set(productId, 1_000_000);

  const attempts: Attempt[] = [];
  let running = true;
  let inFlight = 0;
  const workers = buyers.map(async (buyer) => {
    while (running) {
      const idempotencyKey = variant === 'unique Idempotency-Key' ? randomUUID() : undefined;
      const body = { userId: buyer.userId, items: [{ productId, quantity: 1 }] };
      inFlight++;
      try {
        const reply = await client.post('/orders', body, {
          token: buyer.token,
          headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
        });
        attempts.push({ idempotencyKey, reply });
      } catch (e) {
        attempts.push({ idempotencyKey, error: describeNetworkError(e) });
      } finally {
        inFlight--;
      }
      await sleep(5);
    }
  });
  const createdSince = (from: number) => attempts.slice(from).filter((a) => a.reply?.status === 201).length;
  const until201s = async (from: number, n: number, what: string) => {
    const deadline = Date.now() + 20_000;
    while (createdSince(from) < n) {
      if (Date.now() > deadline) {
        const since = attempts.slice(from);
        const odd = since.filter((a) => a.reply?.status !== 201 && a.reply?.status !== 503).slice(0, 3);
        throw new Error(
          `timed out waiting for ${what}: ${JSON.stringify(countByStatus(since))}; e.g. ${JSON.stringify(odd.map((a) => a.reply?.body ?? a.error))}\n` +
            api.output.filter((l) => /"level":(50|60)/.test(l)).slice(-3).join('\n'),
        );
      }
      await sleep(25);
    }
  };

  // Attempts are recorded as they complete; a round is the attempts completed from its crash on.
  const loadStarted = Date.now();
  const rounds: { crashAt: number; restartedAt: number; restartMs: number; ordersInFlight: number; recovered: boolean }[] = [];
  try {
    await until201s(0, 50, 'orders before the first crash');
    for (let i = 0; i < ROUNDS; i++) {
      // A random moment of the load, so the crash lands at different points of the write path.
      await sleep(100 + Math.random() * 500);
      const crashAt = attempts.length;
      const ordersInFlight = inFlight;
      await database.crash();
      await sleep(DOWN_MS);
      const started = Date.now();
      const restartLogFrom = pgLog.length;
      database = await startEmbeddedPostgres(dir, logTo, { port });
      const restartedAt = attempts.length;
      const recovered = pgLog.slice(restartLogFrom).some((l) => l.includes('automatic recovery in progress'));
      rounds.push({ crashAt, restartedAt, restartMs: Date.now() - started, ordersInFlight, recovered });
      await until201s(restartedAt, SERVED_AFTER_RESTART, `orders after restart ${i + 1}`);
    }
  } finally {
    running = false;
    await Promise.all(workers);
  }

  const loadMs = Date.now() - loadStarted;
  const replies = attempts.flatMap((a) => (a.reply ? [a.reply] : []));
  const created = replies.filter((r) => r.status === 201);
  const unavailable = replies.filter((r) => r.status === 503);
  const networkErrors = attempts.flatMap((a) => (a.error ? [a.error] : []));
  const reachedAndLost = networkErrors.filter((e) => !neverReachedService(e));

  const db = openDatabase({ connectionString: database.url, max: 2 });
  try {
    const { rows } = await db.pool.query<{ id: string }>('SELECT id::text AS id FROM orders WHERE user_id = ANY($1::bigint[])', [
      buyers.map((b) => b.userId),
    ]);
    const stored = new Set(rows.map((r) => r.id));
    const answered = created.map((r) => r.body.orderId as string);
    const answeredSet = new Set(answered);
    const answeredNotStored = answered.filter((id) => !stored.has(id));
    const storedNotAnswered = [...stored].filter((id) => !answeredSet.has(id));

    console.log(
      `[database-restart, ${variant}] ${JSON.stringify({
        rounds: rounds.map((r, i) => ({
          ordersInFlight: r.ordersInFlight,
          recovered: r.recovered,
          restartMs: r.restartMs,
          replies: countByStatus(attempts.slice(r.crashAt, rounds[i + 1]?.crashAt ?? attempts.length)),
        })),
        total: countByStatus(attempts),
        stored: stored.size,
        answered201: answered.length,
        answeredNotStored: answeredNotStored.length,
        storedButNotAnswered201: storedNotAnswered.length,
        storedButNotAnswered201Ids: storedNotAnswered.slice(0, 5),
        networkErrors: networkErrors.slice(0, 5),
      })}`,
    );

    // Mechanics: each crash was one (the next start ran crash recovery) and the service came back
    // by itself each time.
    expect(rounds.map((r) => r.recovered)).toEqual(Array(ROUNDS).fill(true));
    expect(createdSince(rounds.at(-1)!.restartedAt)).toBeGreaterThanOrEqual(SERVED_AFTER_RESTART);
    expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);

    // Every request that reached the service got an HTTP answer. A refused connection (counted
    // apart as 'refused') could not have placed an order and is no failure by itself.
    expect.soft(reachedAndLost, 'requests that reached the service and got no answer').toEqual([]);

    // Every answer is a 201 or a 503 problem with Retry-After (how many 503s depends on how long
    // the service can hold a request through an outage; the log above counts them).
    expect.soft(replies.filter((r) => r.status !== 201 && r.status !== 503).map((r) => ({ status: r.status, body: r.body }))).toEqual([]);
    for (const r of unavailable) {
      expect.soft(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect.soft(r.headers.get('retry-after')).toBeTruthy();
      expect.soft(r.body.code).toBe('SERVICE_UNAVAILABLE');
    }

    // An answer never contradicts the database, in either direction.
    expect.soft(answeredSet.size, 'distinct orderIds among the 201s').toBe(answered.length);
    expect.soft(answeredNotStored, 'orders answered 201 but not stored').toEqual([]);
    expect.soft(storedNotAnswered, 'orders stored while their client was not told 201').toEqual([]);

    // Nothing is half-written; every stored order's event arrives once, none for anything else.
    expect.soft(await auditInvariants(db.pool, initialStock)).toEqual([]);
    const checkedAt = Date.now();
    await receiver.until(
      () => {
        const byOrder = receiver.eventIdsByOrder();
        return [...stored].every((id) => byOrder.has(id));
      },
      "every stored order's event",
      30_000,
    );
    console.log(`[database-restart, ${variant}] load ${loadMs} ms, events of every stored order after another ${Date.now() - checkedAt} ms`);
    const byOrder = receiver.eventIdsByOrder();
    const buyerIds = new Set(buyers.map((b) => b.userId));
    const notOnce = [...stored].filter((id) => byOrder.get(id)?.size !== 1);
    expect.soft(notOnce, 'stored orders whose event was not delivered exactly once').toEqual([]);
    const foreign = receiver.accepted
      .filter((e) => buyerIds.has(e.body?.data?.userId) && !stored.has(e.body?.data?.orderId))
      .map((e) => e.body.data.orderId);
    expect.soft(foreign, 'events for orders that are not stored').toEqual([]);
  } finally {
    await db.close();
  }
}

test(
  `PostgreSQL crashes ${ROUNDS} times under load (orders without Idempotency-Key): 201 or 503 only, and every stored order, and only those, was answered 201`,
  () => crashRestartsUnderLoad('no key'),
);

test(
  `PostgreSQL crashes ${ROUNDS} times under load (a unique Idempotency-Key per order): 201 or 503 only, and every stored order, and only those, was answered 201`,
  () => crashRestartsUnderLoad('unique Idempotency-Key'),
);
