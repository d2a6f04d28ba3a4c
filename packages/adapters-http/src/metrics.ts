import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutboxStats, RelayObserver } from '@shop/application';

export interface Metrics {
  readonly registry: Registry;
  /** Feeds delivery outcomes from the outbox relay. */
  readonly relayObserver: RelayObserver;
  /**
   * One answered request. `route` is the route's template (`/orders/:orderId`), or `unmatched`,
   * so label values stay bounded whatever clients send; `code` is the problem code of an error.
   */
  observeRequest(method: string, route: string, status: number, code: string | null, seconds: number): void;
}

export interface MetricSources {
  readonly outboxStats: () => Promise<OutboxStats>;
  /** The database pool right now: connections open, idle, and requests waiting for one. */
  readonly pool?: () => { total: number; idle: number; waiting: number };
}

/** Routes whose outcomes are counted by business result as well as by HTTP status. */
const OUTCOME_COUNTERS: Record<string, 'orders' | 'coupon_issues'> = {
  'POST /orders': 'orders',
  'POST /coupons/:couponId/issue': 'coupon_issues',
};

/**
 * Prometheus metrics. The outbox gauges are read from the database at scrape time, so every
 * API process reports the shared backlog (aggregate them with max(), not sum()).
 */
export function createMetrics({ outboxStats, pool }: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Answered HTTP requests by method, route template and status; _count is the request rate',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const outcomes = {
    orders: new Counter({
      name: 'orders_total',
      help: 'POST /orders by outcome: created, or the error code (OUT_OF_STOCK, INSUFFICIENT_BALANCE, …)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    coupon_issues: new Counter({
      name: 'coupon_issues_total',
      help: 'First-come coupon issuance by outcome: created, or the error code (COUPON_EXHAUSTED, …)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
  if (pool) {
    const gauge = (name: string, help: string, read: (p: ReturnType<NonNullable<MetricSources['pool']>>) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read(pool()));
        },
      });
    gauge('db_pool_connections_in_use', 'Database connections checked out of the pool', (p) => p.total - p.idle);
    gauge('db_pool_connections_idle', 'Open database connections not in use', (p) => p.idle);
    gauge('db_pool_waiting_requests', 'Requests waiting for a database connection', (p) => p.waiting);
  }

  let last: Promise<OutboxStats> | null = null;
  const stats = () => (last ??= outboxStats().finally(() => setTimeout(() => (last = null), 0)));
  new Gauge({
    name: 'outbox_backlog_events',
    help: 'Recorded events not yet delivered to the data platform',
    registers: [registry],
    async collect() {
      this.set((await stats()).backlog);
    },
  });
  new Gauge({
    name: 'outbox_failing_events',
    help: 'Undelivered events whose last delivery attempt failed',
    registers: [registry],
    async collect() {
      this.set((await stats()).failing);
    },
  });
  new Gauge({
    name: 'outbox_oldest_undelivered_age_seconds',
    help: 'Age of the oldest undelivered event (0 when none)',
    registers: [registry],
    async collect() {
      this.set((await stats()).oldestUndeliveredSeconds);
    },
  });
  const delivered = new Counter({
    name: 'outbox_delivered_total',
    help: 'Events delivered to the data platform by this process',
    registers: [registry],
  });
  const failed = new Counter({
    name: 'outbox_delivery_failures_total',
    help: 'Failed delivery attempts by this process (each is retried)',
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'outbox_delivery_lag_seconds',
    help: 'Time from an event being recorded to its delivery',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const relayErrors = new Counter({
    name: 'outbox_relay_errors_total',
    help: 'Relay rounds that failed (for example the database was unreachable)',
    registers: [registry],
  });
  return {
    registry,
    observeRequest(method, route, status, code, seconds) {
      requests.observe({ method, route, status_code: String(status) }, seconds);
      const counter = OUTCOME_COUNTERS[`${method} ${route}`];
      if (counter) outcomes[counter].inc({ outcome: status < 400 ? 'created' : (code ?? `HTTP_${status}`) });
    },
    relayObserver: {
      delivered(_record, lagMs) {
        delivered.inc();
        lag.observe(Math.max(0, lagMs) / 1000);
      },
      failed() {
        failed.inc();
      },
      crashed() {
        relayErrors.inc();
      },
    },
  };
}
