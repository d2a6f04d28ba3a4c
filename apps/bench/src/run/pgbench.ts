import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { insertSelect, insertValues } from '@shop/adapters-postgres';
import { processTicks, type Meter } from './measure.ts';
import { round, summarise, type Sample, type Shape } from './stats.ts';
import { HOT_STOCK, type PgbenchRows } from './target.ts';

/**
 * The database's own limit: pgbench (-M prepared) running the textbook order transaction on the
 * benchmark's tables, same server, same run, as many clients as the HTTP load has connections, on
 * users and products of its own (PgbenchRows), so the audit checks its orders as the service's.
 */

const APP_NAME = 'bench-pgbench';
export const PGBENCH_THREADS = 2;

/** pgbench's version when it is on PATH; null otherwise (the Node runners are the ceilings then). */
export function pgbenchVersion(): string | null {
  const r = spawnSync('pgbench', ['--version']);
  return r.error ? null : r.stdout.toString().trim() || 'pgbench (version unknown)';
}

/** The order.paid event as the service writes it (packages/domain/src/events.ts), in SQL. */
export function paidEventSql(e: { id: string; at: string; orderId: string; userId: string; items: string; total: string; discount: string; couponId: string }) {
  return `jsonb_build_object('eventId', ${e.id}, 'type', 'order.paid', 'occurredAt', ${e.at}, 'data', jsonb_build_object(
      'orderId', ${e.orderId}, 'userId', ${e.userId}, 'items', ${e.items}, 'totalAmount', ${e.total}, 'discountAmount', ${e.discount},
      'paidAmount', ${e.total} - ${e.discount}, 'couponId', ${e.couponId}, 'createdAt', ${e.at}))`;
}

/** Statements for line k of an order of :n lines: the first always, the others when there. */
const when = (k: number, stmts: string[]) => (k === 1 ? stmts : [`\\if :n >= ${k}`, ...stmts, '\\endif']);

/** The order, its items, ledger entry and event, each one statement; :total and :balance set before. */
function orderStatements(lines: number[]): string[] {
  // pgbench reads `:name` even inside quotes, hence the quoted colons of the time format.
  const at = `to_char(:order_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"')`;
  const item = (k: number) => `jsonb_build_object('productId', :p${k}::bigint, 'quantity', 1, 'unitPrice', :price${k}::bigint, ` +
    `'lineAmount', :price${k}::bigint)`;
  const items = (n: number) => `jsonb_build_array(${lines.slice(0, n).map(item).join(', ')})`;
  const event = (n: number) => insertSelect('outbox_events', {
    event_id: 'e.id', event_type: "'order.paid'", aggregate_id: ':order_id::text', occurred_at: ':order_at::timestamptz',
    payload: paidEventSql({
      id: 'e.id', at: 'e.at', orderId: ':order_id::text', userId: ':u::bigint', items: items(n), total: ':total::bigint', discount: '0', couponId: 'NULL',
    }),
  }, `FROM (SELECT gen_random_uuid() AS id, ${at} AS at) e;`);
  const order = {
    id: 'gen_random_uuid()', user_id: ':u', status: "'PAID'", total_amount: ':total', discount_amount: '0', paid_amount: ':total', coupon_id: 'NULL',
    created_at: 'clock_timestamp()',
  };
  const line = (k: number) => ({
    order_id: ':order_id', line_no: `${k}`, product_id: `:p${k}`, quantity: '1', unit_price: `:price${k}`, line_amount: `:price${k}`,
  });
  const payment = { user_id: ':u', type: "'PAYMENT'", amount: ':neg', balance_after: ':balance', order_id: ':order_id', created_at: ':order_at' };
  return [
    insertValues('orders', order, 'RETURNING id AS order_id, created_at AS order_at \\gset'),
    ...lines.flatMap((k) => when(k, [`${insertValues('order_items', line(k))};`])),
    '\\set neg 0 - :total',
    `${insertValues('balance_ledger', payment)};`,
    ...(lines.length === 1 ? [event(1)] : ['\\if :n = 1', event(1), '\\elif :n = 2', event(2), '\\else', event(3), '\\endif']),
  ];
}

const K3 = [1, 2, 3];
const SCRIPTS = {
  /**
   * A random user of pgbench's, 1–3 distinct random products, 1 unit each. BEGIN; each product's
   * row locked in id order (two orders never deadlock) and its stock updated; the balance updated;
   * order, items, ledger entry and event inserted, one statement at a time; COMMIT.
   */
  uniform: () => [
    '\\set u random(:ufirst, :ulast)',
    '\\set n random(1, 3)',
    '\\set np :plast - :pfirst + 1',
    // Three distinct offsets: i2 and i3 differ from i1 by distinct non-zero amounts; p1 < p2 < p3 the first n of them.
    '\\set i1 random(0, :np - 1)',
    '\\set d2 random(1, :np - 1)',
    '\\set d3 random(1, :np - 2)',
    '\\set d3 CASE WHEN :d3 = :d2 THEN :np - 1 ELSE :d3 END',
    '\\set i2 (:i1 + :d2) % :np',
    '\\set i3 (:i1 + :d3) % :np',
    '\\set p1 :pfirst + CASE WHEN :n = 1 THEN :i1 WHEN :n = 2 THEN least(:i1, :i2) ELSE least(:i1, :i2, :i3) END',
    '\\set p2 :pfirst + CASE WHEN :n = 2 THEN greatest(:i1, :i2) ELSE :i1 + :i2 + :i3 - least(:i1, :i2, :i3) - greatest(:i1, :i2, :i3) END',
    '\\set p3 :pfirst + greatest(:i1, :i2, :i3)',
    'BEGIN;',
    ...K3.flatMap((k) => when(k, [
      `SELECT price AS price${k}, stock AS stock${k} FROM products WHERE id = :p${k} FOR UPDATE \\gset`,
      k === 1 ? '\\set total :price1' : `\\set total :total + :price${k}`,
    ])),
    ...K3.flatMap((k) => when(k, [`UPDATE products SET stock = stock - 1, updated_at = clock_timestamp() WHERE id = :p${k};`])),
    'UPDATE users SET balance = balance - :total WHERE id = :u RETURNING balance \\gset',
    ...orderStatements(K3),
    'COMMIT;',
  ],
  /** The plain row-lock transaction (child.ts), statement for statement; ROLLBACK when the stock is gone. */
  'hot-product': () => [
    '\\set u random(:ufirst, :ulast)',
    'BEGIN;',
    'SELECT price, stock FROM products WHERE id = :hot FOR UPDATE \\gset',
    '\\if :stock < 1', 'ROLLBACK;', '\\else',
    'SELECT balance AS before FROM users WHERE id = :u FOR UPDATE \\gset',
    '\\if :before < :price', 'ROLLBACK;', '\\else',
    '\\set total :price',
    '\\set balance :before - :price',
    '\\set p1 :hot',
    '\\set price1 :price',
    'UPDATE products SET stock = stock - 1, updated_at = clock_timestamp() WHERE id = :hot;',
    'UPDATE users SET balance = balance - :price WHERE id = :u;',
    ...orderStatements([1]),
    'COMMIT;',
    '\\endif', '\\endif',
  ],
};
export const pgbenchScript = (workload: keyof typeof SCRIPTS) => `${SCRIPTS[workload]().join('\n')}\n`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * uniform: pgbench runs for warm-up + window + 2 s; once all its clients are connected, the window
 * opens after the warm-up and closes `durationMs` later; the transactions counted are those its
 * per-transaction log shows starting and ending inside. hot-product: each client runs its share
 * of the attempts while a gate transaction holds the hot row until every client waits on it, so
 * the window opens as the gate is released and closes when pgbench exits. Returns the run's
 * figures and what its checks found wrong.
 */
export async function runPgbench(
  workload: 'uniform' | 'hot-product',
  o: { databaseUrl: string; clients: number; shape: Shape; rows: PgbenchRows; pool: pg.Pool; meter: Meter },
) {
  const { shape, rows: f, pool } = o;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pgbench-'));
  writeFileSync(path.join(dir, `${workload}.sql`), pgbenchScript(workload));
  const url = new URL(o.databaseUrl);
  const env = {
    ...process.env, PGHOST: url.hostname, PGPORT: url.port || '5432', PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password), PGDATABASE: url.pathname.slice(1), PGAPPNAME: APP_NAME,
  };
  const vars = { ufirst: f.users.first, ulast: f.users.last, pfirst: f.products.first, plast: f.products.last, hot: f.hotProductId };
  const length = shape.kind === 'timed'
    ? ['-T', String(Math.ceil((shape.warmupMs + shape.durationMs) / 1000) + 2)]
    : ['-t', String(Math.ceil(shape.attempts / o.clients))];
  const args = [
    '-n', '-M', 'prepared', '-c', String(o.clients), '-j', String(PGBENCH_THREADS), ...length, '-f', `${workload}.sql`,
    ...Object.entries(vars).flatMap(([k, v]) => ['-D', `${k}=${v}`]), '-l', '--log-prefix', 'tx',
  ];
  const ordersOfItsUsers = async () =>
    (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE user_id BETWEEN $1 AND $2', [f.users.first, f.users.last])).rows[0]!.n;
  const ordersBefore = await ordersOfItsUsers();

  const gate = workload === 'hot-product' ? await pool.connect() : null;
  await gate?.query('BEGIN');
  await gate?.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [f.hotProductId]);
  const child = spawn('pgbench', args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr, exitCode] = ['', '', null as number | null];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => resolve(void (exitCode = code ?? (signal ? 128 : 0)))));
  // pgbench's CPU, polled, so that its last reading survives its exit.
  let lastTicks = processTicks(child.pid!);
  const poll = setInterval(() => (lastTicks = processTicks(child.pid!) ?? lastTicks), 20);
  const window = o.meter.window(() => processTicks(child.pid!) ?? lastTicks);

  const waiting = 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()' +
    (gate ? " AND wait_event_type = 'Lock'" : '');
  for (const deadline = Date.now() + 60_000; (await pool.query<{ n: number }>(waiting, [APP_NAME])).rows[0]!.n < o.clients; await sleep(10)) {
    if (exitCode === null && Date.now() <= deadline) continue;
    clearInterval(poll);
    await gate?.query('ROLLBACK').catch(() => undefined);
    gate?.release();
    await exited;
    throw new Error(`pgbench did not connect its ${o.clients} clients (exit ${exitCode}):\n${stderr.slice(-2000)}`);
  }
  let [windowStart, windowEnd] = [0, Number.POSITIVE_INFINITY];
  if (shape.kind === 'timed') {
    await sleep(shape.warmupMs);
    window.begin();
    windowStart = epochNow();
    await sleep(shape.durationMs);
    window.finish();
    windowEnd = epochNow();
    await exited;
  } else {
    window.begin();
    windowStart = epochNow();
    await gate!.query('COMMIT');
    gate!.release();
    await exited;
    window.finish();
  }
  clearInterval(poll);

  // Per-transaction log, one file per thread: client, number, latency µs, script, epoch s, µs.
  const samples: Sample[] = [];
  let [lastEnd, failedInLog] = [windowStart, 0];
  for (const file of readdirSync(dir).filter((n) => n.startsWith('tx'))) {
    for (const t of readFileSync(path.join(dir, file), 'utf8').split('\n').map((l) => l.split(' ')).filter((t) => t.length >= 6)) {
      if (t[2] === 'failed' || t[2] === 'skipped') {
        failedInLog++;
        continue;
      }
      const end = Number(t[4]) * 1000 + Number(t[5]) / 1000;
      // Each client's first hot attempt began before the gate opened: counted from the opening.
      const start = Math.max(end - Number(t[2]) / 1000, shape.kind === 'count' ? windowStart : 0);
      if (start < windowStart || end > windowEnd) continue;
      lastEnd = Math.max(lastEnd, end);
      samples.push([start - windowStart, end - start, workload === 'uniform' ? 201 : 200, '', workload === 'uniform' ? 1 : 0]);
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const problems: string[] = [];
  if (exitCode !== 0) problems.push(`pgbench exited with ${exitCode}`);
  if (failedInLog > 0) problems.push(`${failedInLog} transactions failed`);
  for (const l of stderr.split('\n')) if (/aborted|error/i.test(l) && problems.length < 8) problems.push(l.trim());
  const windowMs = shape.kind === 'timed' ? shape.durationMs : lastEnd - windowStart;
  const transactions = samples.length;
  const pgbench = {
    tps: round(transactions / (windowMs / 1000)), transactions,
    command: `pgbench ${args.join(' ')}`,
    summary: stdout.split('\n').filter((l) => /^(number of (transactions|failed)|latency|initial connection|tps)/.test(l)),
  };
  // Every transaction pgbench processed left exactly one order of its users (hot: one per unit sold).
  const made = (await ordersOfItsUsers()) - ordersBefore;
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? NaN);
  const base = summarise({ samples, windowMs, transportErrors: 0 });
  if (workload === 'uniform') {
    if (made !== processed) problems.push(`pgbench processed ${processed} transactions, its users have ${made} new orders`);
    return { summary: { ...base, outcomes: { committed: transactions } }, samples, pgbench, window, problems, orders: transactions };
  }
  // hot: what was sold is in the database; the last sale's order carries its clock time.
  const sold = (await pool.query<{ n: number; last: Date | null; stock: string }>(
    `SELECT count(*)::int AS n, max(o.created_at) AS last, (SELECT stock FROM products WHERE id = $1) AS stock
     FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.product_id = $1`,
    [f.hotProductId],
  )).rows[0]!;
  if (sold.n !== HOT_STOCK || Number(sold.stock) !== 0 || made !== HOT_STOCK) {
    problems.push(`${sold.n} sold, ${made} orders, stock left ${sold.stock}; expected exactly ${HOT_STOCK} sold and stock 0`);
  }
  const outcomes = { 'sold (committed)': sold.n, 'out of stock (rolled back)': transactions - sold.n };
  const summary = { ...base, orders: sold.n, ordersPerSecond: round(sold.n / (windowMs / 1000)), outcomes };
  const salesPerSecond = round(sold.n / (((sold.last ? sold.last.getTime() - windowStart : windowMs)) / 1000));
  return { summary, samples, pgbench, window, problems, orders: sold.n, salesPerSecond };
}
