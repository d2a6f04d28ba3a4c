-- Partial refunds (issue 26, contract v1.2): an order gives back some of its units, any number of
-- times, written by write_order_group like orders and cancellations.

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders
  ADD CONSTRAINT orders_status_check CHECK (status IN ('PAID', 'PARTIALLY_REFUNDED', 'CANCELLED')),
  ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0,
  ADD CONSTRAINT orders_refunded_amount_check CHECK (refunded_amount BETWEEN 0 AND paid_amount);
ALTER TABLE order_items
  ADD COLUMN refunded_quantity integer NOT NULL DEFAULT 0,
  ADD CONSTRAINT order_items_refunded_quantity_check CHECK (refunded_quantity BETWEEN 0 AND quantity);

-- A cancelled order gave everything back: the new columns say so for the orders cancelled before them.
UPDATE orders SET refunded_amount = paid_amount WHERE status = 'CANCELLED';
UPDATE order_items i SET refunded_quantity = i.quantity FROM orders o WHERE o.id = i.order_id AND o.status = 'CANCELLED';

-- A refund is immutable once written: GET /orders/{orderId} lists them, a replay of its request
-- rebuilds its first answer from them (orderAfterRefunds). xact_id lets the best-seller rollup take
-- each refund's units exactly once, as it takes orders (0003) and cancellations (0008).
CREATE TABLE refunds (
  id          uuid        PRIMARY KEY,
  order_id    uuid        NOT NULL REFERENCES orders (id),
  amount      bigint      NOT NULL CHECK (amount >= 0),
  created_at  timestamptz NOT NULL,
  xact_id     xid8        NOT NULL DEFAULT pg_current_xact_id()
);
-- Ids are UUIDv7, so (order_id, id) is an order's refunds oldest first.
CREATE INDEX refunds_by_order ON refunds (order_id, id);
CREATE INDEX refunds_by_xact ON refunds (xact_id);
CREATE TABLE refund_items (
  refund_id   uuid    NOT NULL REFERENCES refunds (id),
  line_no     integer NOT NULL,
  product_id  bigint  NOT NULL REFERENCES products (id),
  quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
  PRIMARY KEY (refund_id, line_no),
  UNIQUE (refund_id, product_id)
);

-- An order now has any number of order.refunded events: only order.paid and order.cancelled stay
-- one per order. The event a change follows is found by the newest seq of its order.
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_aggregate_type_key;
CREATE UNIQUE INDEX outbox_events_one_per_order ON outbox_events (aggregate_id, event_type)
  WHERE event_type IN ('order.paid', 'order.cancelled');
CREATE INDEX outbox_events_by_aggregate ON outbox_events (aggregate_id, seq);
