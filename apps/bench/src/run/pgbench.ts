import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { progressBar } from './children.ts';
import { processTicks, type MeasuredWindow, type Meter } from './meter.ts';
import type { Sample, Shape } from './protocol.ts';
import type { PgbenchFixture } from './seed.ts';

/**
 * The database's own limit: pgbench (-M prepared) running the textbook order transaction on the
 * benchmark's own tables, on the same server, in the same run, with as many clients as the HTTP
 * load has connections. Its users and products are its own (PgbenchFixture), so the service's
 * runs never see its orders, and the audit checks its orders as it checks the service's.
 */

const APP_NAME = 'bench-pgbench';

/** pgbench on PATH, or null (the benchmark then falls back to its Node runners, and says so). */
export function findPgbench(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, 'pgbench');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return null;
}

export function pgbenchVersion(bin: string): string {
  try {
    return execFileSync(bin, ['--version']).toString().trim();
  } catch {
    return 'pgbench (version unknown)';
  }
}

/**
 * The order.paid event as the service writes it (packages/domain/src/events.ts), built in SQL.
 * (pgbench reads `:name` even inside quotes, hence the quoted colons of the time format.)
 */
function outboxInsert(items: string): string {
  return `INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
  SELECT e.id, 'order.paid', :order_id::text,
         jsonb_build_object('eventId', e.id, 'type', 'order.paid', 'occurredAt', e.at,
           'data', jsonb_build_object('orderId', :order_id::text, 'userId', :u::bigint, 'items', jsonb_build_array(${items}),
             'totalAmount', :total::bigint, 'discountAmount', 0, 'paidAmount', :total::bigint, 'couponId', NULL, 'createdAt', e.at)),
         :order_at::timestamptz
  FROM (SELECT gen_random_uuid() AS id, to_char(:order_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS at) e;`;
}

const item = (k: number) =>
  `jsonb_build_object('productId', :p${k}::bigint, 'quantity', 1, 'unitPrice', :price${k}::bigint, 'lineAmount', :price${k}::bigint)`;

/**
 * uniform: a random user of pgbench's, 1–3 distinct random products of pgbench's, 1 unit each.
 * BEGIN; each product's row locked (in id order, so two orders never deadlock), each stock
 * updated, the balance updated, the order, its items, the ledger entry and the event inserted,
 * one statement at a time; COMMIT.
 */
export function uniformScript(): string {
  const lines = [
    '\\set u random(:ufirst, :ulast)',
    '\\set n random(1, 3)',
    '\\set np :plast - :pfirst + 1',
    // Three distinct offsets: i2 and i3 differ from i1 by distinct non-zero amounts.
    '\\set i1 random(0, :np - 1)',
    '\\set d2 random(1, :np - 1)',
    '\\set d3 random(1, :np - 2)',
    '\\set d3 CASE WHEN :d3 = :d2 THEN :np - 1 ELSE :d3 END',
    '\\set i2 (:i1 + :d2) % :np',
    '\\set i3 (:i1 + :d3) % :np',
    // p1 < p2 < p3: the first n of them, in id order.
    '\\set p1 :pfirst + CASE WHEN :n = 1 THEN :i1 WHEN :n = 2 THEN least(:i1, :i2) ELSE least(:i1, :i2, :i3) END',
    '\\set p2 :pfirst + CASE WHEN :n = 2 THEN greatest(:i1, :i2) ELSE :i1 + :i2 + :i3 - least(:i1, :i2, :i3) - greatest(:i1, :i2, :i3) END',
    '\\set p3 :pfirst + greatest(:i1, :i2, :i3)',
    'BEGIN;',
  ];
  const each = (k: number, stmt: string[]) => (k === 1 ? stmt : [`\\if :n >= ${k}`, ...stmt, '\\endif']);
  for (let k = 1; k <= 3; k++) {
    lines.push(
      ...each(k, [
        `SELECT price AS price${k}, stock AS stock${k} FROM products WHERE id = :p${k} FOR UPDATE \\gset`,
        k === 1 ? '\\set total :price1' : `\\set total :total + :price${k}`,
      ]),
    );
  }
  for (let k = 1; k <= 3; k++) lines.push(...each(k, [`UPDATE products SET stock = stock - 1, updated_at = clock_timestamp() WHERE id = :p${k};`]));
  lines.push(
    'UPDATE users SET balance = balance - :total WHERE id = :u RETURNING balance \\gset',
    `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
  VALUES (gen_random_uuid(), :u, 'PAID', :total, 0, :total, NULL, clock_timestamp()) RETURNING id AS order_id, created_at AS order_at \\gset`,
  );
  for (let k = 1; k <= 3; k++) {
    lines.push(
      ...each(k, [
        `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount) VALUES (:order_id, ${k}, :p${k}, 1, :price${k}, :price${k});`,
      ]),
    );
  }
  lines.push(
    '\\set neg 0 - :total',
    `INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at) VALUES (:u, 'PAYMENT', :neg, :balance, :order_id, :order_at);`,
    '\\if :n = 1',
    outboxInsert(item(1)),
    '\\elif :n = 2',
    outboxInsert(`${item(1)}, ${item(2)}`),
    '\\else',
    outboxInsert(`${item(1)}, ${item(2)}, ${item(3)}`),
    '\\endif',
    'COMMIT;',
  );
  return `${lines.join('\n')}\n`;
}

/**
 * hot-product: the plain row-lock transaction (plain-row-lock.ts), statement for statement: the
 * hot product's row locked first, then the user's, each checked, then stock, balance, order, item,
 * ledger entry and event, COMMIT; ROLLBACK when the stock is gone.
 */
export function hotScript(): string {
  return `${[
    '\\set u random(:ufirst, :ulast)',
    'BEGIN;',
    'SELECT price, stock FROM products WHERE id = :hot FOR UPDATE \\gset',
    '\\if :stock < 1',
    'ROLLBACK;',
    '\\else',
    'SELECT balance FROM users WHERE id = :u FOR UPDATE \\gset',
    '\\if :balance < :price',
    'ROLLBACK;',
    '\\else',
    '\\set total :price',
    '\\set after :balance - :price',
    '\\set neg 0 - :price',
    '\\set p1 :hot',
    '\\set price1 :price',
    'UPDATE products SET stock = stock - 1, updated_at = clock_timestamp() WHERE id = :hot;',
    'UPDATE users SET balance = balance - :price WHERE id = :u;',
    `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
  VALUES (gen_random_uuid(), :u, 'PAID', :price, 0, :price, NULL, clock_timestamp()) RETURNING id AS order_id, created_at AS order_at \\gset`,
    'INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount) VALUES (:order_id, 1, :hot, 1, :price, :price);',
    `INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at) VALUES (:u, 'PAYMENT', :neg, :after, :order_id, :order_at);`,
    outboxInsert(item(1)),
    'COMMIT;',
    '\\endif',
    '\\endif',
  ].join('\n')}\n`;
}

export interface PgbenchPlan {
  readonly bin: string;
  readonly workload: 'uniform' | 'hot-product';
  readonly databaseUrl: string;
  readonly clients: number;
  readonly threads: number;
  readonly shape: Shape;
  readonly fixture: PgbenchFixture;
  /** For the gate, pg_stat_activity and the sold count; not used for load. */
  readonly pool: pg.Pool;
  readonly meter: Meter;
  readonly label: string;
}

export interface PgbenchRun {
  /** Transactions that completed inside the window (each one order for uniform). */
  readonly samples: Sample[];
  readonly windowMs: number;
  readonly transactions: number;
  readonly tps: number;
  /** Successful orders: every transaction for uniform; the hot product's units sold for hot. */
  readonly orders: number;
  /** hot-product: units sold ÷ seconds from the gate's opening to the last sale. */
  readonly salesPerSecond?: number;
  readonly stockLeft?: number;
  readonly window: MeasuredWindow;
  /** Aborted clients, failed transactions, a non-zero exit: each a line of pgbench's. */
  readonly problems: string[];
  readonly command: string;
  /** pgbench's own summary lines (tps, latency), for the record. */
  readonly summary: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * uniform: pgbench runs for warm-up + window + 2 s; once its clients are all connected, the window
 * opens after the warm-up and closes `durationMs` later (CPU and pg_stat_statements sampled then);
 * the transactions counted are those its per-transaction log shows starting and ending inside.
 * hot-product: each client runs its share of the attempts; the hot row is held by a gate
 * transaction until every client is connected and waiting on it, so the window opens with the
 * gate's release and closes when pgbench exits.
 */
export async function runPgbench(plan: PgbenchPlan): Promise<PgbenchRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pgbench-'));
  const script = path.join(dir, `${plan.workload}.sql`);
  writeFileSync(script, plan.workload === 'uniform' ? uniformScript() : hotScript());
  const url = new URL(plan.databaseUrl);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: url.hostname,
    PGPORT: url.port || '5432',
    PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: url.pathname.slice(1),
    PGAPPNAME: APP_NAME,
  };
  const f = plan.fixture;
  const vars = [`ufirst=${f.users.first}`, `ulast=${f.users.last}`, `pfirst=${f.products.first}`, `plast=${f.products.last}`, `hot=${f.hotProductId}`];
  const shape = plan.shape;
  const length =
    shape.kind === 'timed' ? ['-T', String(Math.ceil((shape.warmupMs + shape.durationMs) / 1000) + 2)] : ['-t', String(Math.ceil(shape.attempts / plan.clients))];
  const args = [
    '-n', '-M', 'prepared', '-c', String(plan.clients), '-j', String(plan.threads), ...length,
    '-f', script, ...vars.flatMap((v) => ['-D', v]), '-l', '--log-prefix', path.join(dir, 'tx'),
  ];
  const command = `pgbench ${args.map((a) => (a.startsWith(dir) ? path.basename(a) : a)).join(' ')}`;
  const onProgress = progressBar(plan.label);

  let gate: pg.PoolClient | null = null;
  if (plan.workload === 'hot-product') {
    gate = await plan.pool.connect();
    await gate.query('BEGIN');
    await gate.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [f.hotProductId]);
  }

  const child = spawn(plan.bin, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let exitCode: number | null = null;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? 128 : 0);
      resolve();
    }),
  );
  const pid = child.pid!;
  // pgbench's CPU, polled, so its last reading survives its exit.
  let lastTicks: number | null = processTicks(pid);
  const poll = setInterval(() => {
    lastTicks = processTicks(pid) ?? lastTicks;
  }, 20);
  const window = plan.meter.window(() => processTicks(pid) ?? lastTicks);

  const sessions = async (waitingOnLock: boolean) =>
    (await plan.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()${waitingOnLock ? " AND wait_event_type = 'Lock'" : ''}`,
      [APP_NAME],
    )).rows[0]!.n;
  const deadline = Date.now() + 60_000;
  while ((await sessions(gate !== null)) < plan.clients) {
    if (exitCode !== null || Date.now() > deadline) {
      clearInterval(poll);
      if (gate) {
        await gate.query('ROLLBACK').catch(() => undefined);
        gate.release();
      }
      await exited;
      throw new Error(`pgbench did not connect its ${plan.clients} clients (exit ${exitCode}):\n${stderr.slice(-2000)}`);
    }
    await sleep(10);
  }

  let windowStartEpoch: number;
  let windowEndEpoch = Number.POSITIVE_INFINITY;
  let ticker: NodeJS.Timeout;
  if (shape.kind === 'timed') {
    const connected = performance.now();
    ticker = setInterval(() => {
      const t = performance.now() - connected;
      if (t < shape.warmupMs) onProgress(0, shape.durationMs, 'warming up');
      else onProgress(Math.min(shape.durationMs, t - shape.warmupMs), shape.durationMs, 'measuring');
    }, 200);
    await sleep(shape.warmupMs);
    window.begin();
    windowStartEpoch = epochNow();
    await sleep(shape.durationMs);
    window.finish();
    windowEndEpoch = epochNow();
    await exited;
  } else {
    const total = shape.attempts;
    ticker = setInterval(() => onProgress(0, total, 'measuring'), 200);
    window.begin();
    windowStartEpoch = epochNow();
    await gate!.query('COMMIT');
    gate!.release();
    await exited;
    window.finish();
  }
  clearInterval(ticker);
  clearInterval(poll);
  onProgress(1, 1, 'done');

  // Per-transaction log, one file per thread: client, number, latency µs, script, epoch s, µs.
  const samples: Sample[] = [];
  let transactions = 0;
  let lastEnd = windowStartEpoch;
  let failedInLog = 0;
  for (const file of readdirSync(dir).filter((n) => n.startsWith('tx'))) {
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      const t = line.split(' ');
      if (t.length < 6) continue;
      if (t[2] === 'failed' || t[2] === 'skipped') {
        failedInLog++;
        continue;
      }
      const end = Number(t[4]) * 1000 + Number(t[5]) / 1000;
      let latencyMs = Number(t[2]) / 1000;
      let start = end - latencyMs;
      if (shape.kind === 'count' && start < windowStartEpoch) {
        // Each client's first attempt began before the gate opened: counted from the opening.
        start = windowStartEpoch;
        latencyMs = end - start;
      }
      if (start < windowStartEpoch || end > windowEndEpoch) continue;
      transactions++;
      lastEnd = Math.max(lastEnd, end);
      samples.push([start - windowStartEpoch, latencyMs, plan.workload === 'uniform' ? 201 : 200, '', plan.workload === 'uniform' ? 1 : 0]);
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const problems: string[] = [];
  if (exitCode !== 0) problems.push(`pgbench exited with ${exitCode}`);
  if (failedInLog > 0) problems.push(`${failedInLog} transactions failed`);
  for (const l of stderr.split('\n')) if (/aborted|error/i.test(l) && problems.length < 8) problems.push(l.trim());
  const summary = stdout.split('\n').filter((l) => /^(number of (transactions|failed)|latency|initial connection|tps)/.test(l));

  const windowMs = shape.kind === 'timed' ? shape.durationMs : lastEnd - windowStartEpoch;
  if (plan.workload === 'uniform') {
    return { samples, windowMs, transactions, tps: round(transactions / (windowMs / 1000)), orders: transactions, window, problems, command, summary };
  }
  // hot: what was sold is in the database; the last sale's order carries its clock time.
  const [sold] = (await plan.pool.query<{ n: number; last: Date | null; stock: string }>(
    `SELECT count(*)::int AS n, max(o.created_at) AS last, (SELECT stock FROM products WHERE id = $1) AS stock
     FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.product_id = $1`,
    [f.hotProductId],
  )).rows;
  const lastSaleMs = sold!.last ? sold!.last.getTime() - windowStartEpoch : windowMs;
  return {
    samples,
    windowMs,
    transactions,
    tps: round(transactions / (windowMs / 1000)),
    orders: sold!.n,
    salesPerSecond: round(sold!.n / (lastSaleMs / 1000)),
    stockLeft: Number(sold!.stock),
    window,
    problems,
    command,
    summary,
  };
}

const round = (n: number) => Math.round(n * 100) / 100;
