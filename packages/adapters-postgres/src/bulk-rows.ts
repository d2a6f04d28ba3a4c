import type { Insertable } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Rows written straight into the tables, beside the service's own statements: the benchmark's
 * fixtures, its textbook order transaction (pgbench's script and the Node runner) and its
 * year-long seed. Each table's insertable columns are stated here once, in the migrations'
 * order, and every such INSERT is built from them, so no caller restates a column list.
 */
export type Table = keyof Database;

export const INSERTABLE_COLUMNS = {
  users: ['id', 'name', 'balance', 'created_at'],
  products: ['id', 'name', 'price', 'stock', 'created_at', 'updated_at'],
  coupons: [
    'id', 'name', 'discount_type', 'discount_value', 'total_quantity', 'issued_quantity',
    'min_order_amount', 'issue_starts_at', 'issue_ends_at', 'valid_days', 'created_at',
  ],
  orders: [
    'id', 'user_id', 'status', 'total_amount', 'discount_amount', 'paid_amount', 'coupon_id', 'created_at', 'cancelled_at', 'refunded_amount',
  ],
  order_items: ['order_id', 'line_no', 'product_id', 'quantity', 'unit_price', 'line_amount', 'refunded_quantity'],
  user_coupons: ['user_id', 'coupon_id', 'issued_at', 'expires_at', 'used_at', 'order_id'],
  balance_ledger: ['id', 'user_id', 'type', 'amount', 'balance_after', 'order_id', 'created_at'],
  outbox_events: [
    'event_id', 'event_type', 'aggregate_id', 'payload', 'occurred_at',
    'created_at', 'attempts', 'next_attempt_at', 'last_error', 'delivered_at',
  ],
  product_sales_hourly: ['hour', 'product_id', 'quantity'],
  idempotency_keys: ['user_id', 'key', 'fingerprint', 'result', 'created_at'],
  refunds: ['id', 'order_id', 'amount', 'created_at', 'xact_id'],
  refund_items: ['refund_id', 'line_no', 'product_id', 'quantity'],
} as const satisfies { [T in Table]: ReadonlyArray<keyof Database[T]> };

// Does not compile while schema.ts has a column the lists above lack.
type Unlisted = { [T in Table]: Exclude<keyof Database[T], (typeof INSERTABLE_COLUMNS)[T][number]> }[Table];
const everyColumnListed: [Unlisted] extends [never] ? true : Unlisted = true;

/**
 * One row as SQL: an expression per column (a literal, `$1`, pgbench's `:name`, a column of the
 * SELECT it comes from). The columns without a default are required, so a new NOT NULL column
 * fails the typecheck of every writer here rather than at run time.
 */
export type RowSql<T extends Table> = { [C in keyof Insertable<Database[T]>]: string };

/**
 * Tables whose id is GENERATED ALWAYS: an explicit id needs OVERRIDING SYSTEM VALUE. balance_ledger's
 * was until migration 0014 (a sequence's default since), and still is on the benchmark's
 * unpartitioned reference (migrated to 0013); on a plain default the clause changes nothing.
 */
const IDENTITY_ID: ReadonlySet<Table> = new Set(['users', 'products', 'coupons', 'balance_ledger']);

function head<T extends Table>(table: T, row: RowSql<T>): { into: string; values: string } {
  const given = (INSERTABLE_COLUMNS[table] as readonly string[]).filter((c) => (row as Record<string, string | undefined>)[c] !== undefined);
  const overriding = IDENTITY_ID.has(table) && given.includes('id') ? ' OVERRIDING SYSTEM VALUE' : '';
  return {
    into: `INSERT INTO ${table} (${given.join(', ')})${overriding}`,
    values: given.map((c) => (row as Record<string, string>)[c]).join(', '),
  };
}

/** `INSERT INTO table (columns) VALUES (expressions) <tail>`: one row, e.g. with `RETURNING …`. */
export function insertValues<T extends Table>(table: T, row: RowSql<T>, tail = ''): string {
  const { into, values } = head(table, row);
  return `${into} VALUES (${values})${tail ? ` ${tail}` : ''}`;
}

/** `INSERT INTO table (columns) SELECT expressions <from>`: many rows in one set-based statement. */
export function insertSelect<T extends Table>(table: T, row: RowSql<T>, from: string): string {
  const { into, values } = head(table, row);
  return `${into}\n  SELECT ${values}\n  ${from}`;
}
