-- Best sellers come from an hourly rollup maintained off the order path (ADR 0005).
-- xact_id lets the rollup take each order exactly once: it folds in only orders whose
-- transaction is older than every transaction still running, so none can commit late.
ALTER TABLE orders ADD COLUMN xact_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX orders_by_xact ON orders (xact_id);
CREATE INDEX orders_by_created ON orders (created_at);

CREATE TABLE product_sales_hourly (
  hour        timestamptz NOT NULL,
  product_id  bigint      NOT NULL,
  quantity    bigint      NOT NULL CHECK (quantity >= 0),
  PRIMARY KEY (hour, product_id)
);

CREATE TABLE rollup_state (
  name            text PRIMARY KEY,
  processed_until xid8 NOT NULL
);
INSERT INTO rollup_state (name, processed_until) VALUES ('product_sales_hourly', '0'::xid8);
