import { insertSelect, insertValues } from '../bulk-rows.ts';
import { paidEventSql } from './paid-event-sql.ts';

/**
 * pgbench's scripts: the textbook order transaction, the database's own limit the benchmark sets
 * the service against, on users :ufirst..:ulast and products :pfirst..:plast (hot: :hot) of its own.
 */

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
  }, `FROM (SELECT uuid_v7() AS id, ${at} AS at) e;`);
  const order = {
    id: 'uuid_v7()', user_id: ':u', status: "'PAID'", total_amount: ':total', discount_amount: '0', paid_amount: ':total', coupon_id: 'NULL',
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
  /** The plain row-lock transaction (reference-transactions.ts), statement for statement; ROLLBACK when the stock is gone. */
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
export type PgbenchWorkload = keyof typeof SCRIPTS;
export const pgbenchScript = (workload: PgbenchWorkload) => `${SCRIPTS[workload]().join('\n')}\n`;

/** libpq's environment for pgbench to reach the database at `databaseUrl`, its sessions named `appName`. */
export function pgbenchEnv(databaseUrl: string, appName = 'pgbench'): Record<string, string> {
  const url = new URL(databaseUrl);
  const [user, password] = [decodeURIComponent(url.username), decodeURIComponent(url.password)];
  return { PGHOST: url.hostname, PGPORT: url.port || '5432', PGUSER: user, PGPASSWORD: password, PGDATABASE: url.pathname.slice(1), PGAPPNAME: appName };
}

/** A script's variables as pgbench's `-D name=value` arguments. */
export const pgbenchVars = (vars: Record<string, number>) => Object.entries(vars).flatMap(([name, value]) => ['-D', `${name}=${value}`]);
