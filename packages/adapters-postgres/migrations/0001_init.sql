-- Money is bigint won. CHECK constraints repeat the domain's limits as a last line of defence:
-- whatever a bug in the application does, the database refuses negative stock or balance.

CREATE TABLE users (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text        NOT NULL,
  balance     bigint      NOT NULL DEFAULT 0 CHECK (balance BETWEEN 0 AND 1000000000000),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text        NOT NULL,
  price       bigint      NOT NULL CHECK (price >= 0),
  stock       bigint      NOT NULL CHECK (stock >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE coupons (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name              text        NOT NULL,
  discount_type     text        NOT NULL CHECK (discount_type IN ('FIXED', 'RATE')),
  discount_value    bigint      NOT NULL CHECK (discount_value > 0),
  total_quantity    integer     NOT NULL CHECK (total_quantity > 0),
  issued_quantity   integer     NOT NULL DEFAULT 0,
  min_order_amount  bigint      NOT NULL DEFAULT 0 CHECK (min_order_amount >= 0),
  issue_starts_at   timestamptz,
  issue_ends_at     timestamptz,
  valid_days        integer     NOT NULL CHECK (valid_days > 0),
  created_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (issued_quantity BETWEEN 0 AND total_quantity),
  CHECK (discount_type <> 'RATE' OR discount_value <= 100)
);

CREATE TABLE orders (
  id               uuid        PRIMARY KEY,
  user_id          bigint      NOT NULL REFERENCES users (id),
  status           text        NOT NULL CHECK (status IN ('PAID')),
  total_amount     bigint      NOT NULL CHECK (total_amount >= 0),
  discount_amount  bigint      NOT NULL CHECK (discount_amount BETWEEN 0 AND total_amount),
  paid_amount      bigint      NOT NULL CHECK (paid_amount = total_amount - discount_amount),
  coupon_id        bigint      REFERENCES coupons (id),
  created_at       timestamptz NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC);

CREATE TABLE order_items (
  order_id     uuid     NOT NULL REFERENCES orders (id),
  line_no      smallint NOT NULL,
  product_id   bigint   NOT NULL REFERENCES products (id),
  quantity     integer  NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
  unit_price   bigint   NOT NULL CHECK (unit_price >= 0),
  line_amount  bigint   NOT NULL CHECK (line_amount = unit_price * quantity),
  PRIMARY KEY (order_id, line_no),
  UNIQUE (order_id, product_id)
);
CREATE INDEX order_items_by_product ON order_items (product_id);

CREATE TABLE user_coupons (
  user_id     bigint      NOT NULL REFERENCES users (id),
  coupon_id   bigint      NOT NULL REFERENCES coupons (id),
  issued_at   timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  order_id    uuid        REFERENCES orders (id),
  PRIMARY KEY (user_id, coupon_id),
  CHECK ((used_at IS NULL) = (order_id IS NULL))
);
CREATE INDEX user_coupons_by_coupon ON user_coupons (coupon_id);

CREATE TABLE balance_ledger (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id        bigint      NOT NULL REFERENCES users (id),
  type           text        NOT NULL CHECK (type IN ('CHARGE', 'PAYMENT', 'REFUND')),
  amount         bigint      NOT NULL,
  balance_after  bigint      NOT NULL CHECK (balance_after >= 0),
  order_id       uuid        REFERENCES orders (id),
  created_at     timestamptz NOT NULL
);
CREATE INDEX balance_ledger_by_user ON balance_ledger (user_id, id DESC);

-- The transactional outbox: written in the order's own transaction, delivered afterwards.
-- One event per (type, aggregate): a second distinct eventId for one order cannot exist.
CREATE TABLE outbox_events (
  event_id         uuid        PRIMARY KEY,
  event_type       text        NOT NULL,
  aggregate_id     text        NOT NULL,
  payload          jsonb       NOT NULL,
  occurred_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  attempts         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  delivered_at     timestamptz,
  UNIQUE (event_type, aggregate_id)
);
CREATE INDEX outbox_events_undelivered ON outbox_events (next_attempt_at) WHERE delivered_at IS NULL;

-- Only completed requests are remembered; an in-flight one is marked by a transaction-scoped
-- advisory lock instead, which a crash releases by itself.
CREATE TABLE idempotency_keys (
  user_id      bigint      NOT NULL,
  key          text        NOT NULL,
  fingerprint  text        NOT NULL,
  result       jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
