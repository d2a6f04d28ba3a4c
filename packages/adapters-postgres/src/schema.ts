import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface Database {
  users: { id: Generated<number>; name: string; balance: Generated<number>; created_at: Generated<Date> };
  products: {
    id: Generated<number>;
    name: string;
    price: number;
    stock: number;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
  coupons: {
    id: Generated<number>;
    name: string;
    discount_type: 'FIXED' | 'RATE';
    discount_value: number;
    total_quantity: number;
    issued_quantity: Generated<number>;
    min_order_amount: number;
    issue_starts_at: Timestamp | null;
    issue_ends_at: Timestamp | null;
    valid_days: number;
    created_at: Generated<Date>;
  };
  orders: {
    id: string;
    user_id: number;
    status: 'PAID' | 'PARTIALLY_REFUNDED' | 'CANCELLED';
    total_amount: number;
    discount_amount: number;
    paid_amount: number;
    coupon_id: number | null;
    created_at: Timestamp;
    cancelled_at: Timestamp | null;
    refunded_amount: Generated<number>;
  };
  order_items: {
    order_id: string;
    line_no: number;
    product_id: number;
    quantity: number;
    unit_price: number;
    line_amount: number;
    refunded_quantity: Generated<number>;
  };
  /** Partial refunds (migration 0012), written by write_order_group. */
  refunds: { id: string; order_id: string; amount: number; created_at: Timestamp; xact_id: Generated<string> };
  refund_items: { refund_id: string; line_no: number; product_id: number; quantity: number };
  user_coupons: {
    user_id: number;
    coupon_id: number;
    issued_at: Timestamp;
    expires_at: Timestamp;
    used_at: Timestamp | null;
    order_id: string | null;
  };
  balance_ledger: {
    id: Generated<number>;
    user_id: number;
    type: 'CHARGE' | 'PAYMENT' | 'REFUND';
    amount: number;
    balance_after: number;
    order_id: string | null;
    created_at: Timestamp;
  };
  outbox_events: {
    event_id: string;
    event_type: string;
    aggregate_id: string;
    payload: unknown;
    occurred_at: Timestamp;
    created_at: Generated<Date>;
    attempts: Generated<number>;
    next_attempt_at: Generated<Date>;
    last_error: string | null;
    delivered_at: Timestamp | null;
  };
  /** The best-seller rollup (migration 0003), written by refreshSalesRollup's raw SQL and by seeds. */
  product_sales_hourly: { hour: Timestamp; product_id: number; quantity: number };
  idempotency_keys: {
    user_id: number;
    key: string;
    fingerprint: string;
    result: unknown;
    created_at: Generated<Date>;
  };
}
