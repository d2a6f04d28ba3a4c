import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutboxStats, PurgeObserver, RelayObserver } from '@shop/application';
import { errorHandler, sendProblem } from './errors.ts';
import { problem } from './problem.ts';

export interface Metrics {
  readonly registry: Registry;
  /** Feeds delivery outcomes from the outbox relay. */
  readonly relayObserver: RelayObserver;
  /** Feeds the passes of the purges (expired idempotency keys, delivered outbox records). */
  readonly purgeObserver: PurgeObserver;
  /**
   * One answered request. `route` is the route's template (`/orders/:orderId`), or `unmatched`,
   * so label values stay bounded whatever clients send; `code` is the problem code of an error.
   */
  observeRequest(method: string, route: string, status: number, code: string | null, seconds: number): void;
  /** A read that may be a moment old (the catalog, best sellers), and where it was served. */
  observeReplicaRead(on: 'replica' | 'primary'): void;
  /** A connection closed as soon as it was accepted: its address had the most open connections allowed. */
  observeRefusedConnection(): void;
}

export interface MetricSources {
  readonly outboxStats: () => Promise<OutboxStats>;
  /** The database pool right now: connections open, idle, and requests waiting for one. */
  readonly pool?: () => { total: number; idle: number; waiting: number };
  /** The read replicas right now (DATABASE_READ_URL), by position in that list. */
  readonly replicas?: () => ReadonlyArray<{ healthy: boolean; lagMs: number | null }>;
}

/** How long a scrape waits for the outbox gauges' query before answering with the last values. */
const OUTBOX_STATS_WAIT_MS = 1_000;

/** Routes whose outcomes are counted by business result as well as by HTTP status. */
const OUTCOME_COUNTERS: Record<string, 'orders' | 'coupon_issues'> = {
  'POST /orders': 'orders',
  'POST /coupons/:couponId/issue': 'coupon_issues',
};

/**
 * Prometheus metrics. The outbox gauges are read from the database at scrape time, so every
 * API process reports the shared backlog (aggregate them with max(), not sum()).
 */
export function createMetrics({ outboxStats, pool, replicas }: MetricSources): Metrics {
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

  const refusedConnections = new Counter({
    name: 'http_connections_refused_total',
    help: 'Connections closed as soon as accepted because their client address already had MAX_CONNECTIONS_PER_ADDRESS open',
    registers: [registry],
  });
  const replicaReads = new Counter({
    name: 'db_replica_reads_total',
    help: 'Reads that may be a moment old (catalog, best sellers) by where they were served: replica, or primary (no replica close enough, or it failed)',
    labelNames: ['on'],
    registers: [registry],
  });
  if (replicas) {
    new Gauge({
      name: 'db_replica_lag_ms',
      help: 'How far each read replica was behind the primary at its last check (an upper bound); -1 when unknown (down)',
      labelNames: ['replica'],
      registers: [registry],
      collect() {
        replicas().forEach((r, i) => this.set({ replica: String(i) }, r.lagMs ?? -1));
      },
    });
    new Gauge({
      name: 'db_replica_healthy',
      help: 'Whether each read replica is read from: reachable and within DATABASE_READ_MAX_LAG_MS (1) or not (0)',
      labelNames: ['replica'],
      registers: [registry],
      collect() {
        replicas().forEach((r, i) => this.set({ replica: String(i) }, r.healthy ? 1 : 0));
      },
    });
  }

  // The outbox gauges need a database query. When the pool is saturated or the database is away
  // (exactly when an operator looks), the scrape must still answer: with the last values read, and
  // outbox_stats_age_seconds saying how old they are.
  let known: { stats: OutboxStats; atMs: number } = { stats: { backlog: 0, failing: 0, oldestUndeliveredSeconds: 0 }, atMs: 0 };
  let last: Promise<OutboxStats> | null = null;
  const read = async (): Promise<OutboxStats> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('outbox stats: no answer in time')), OUTBOX_STATS_WAIT_MS)));
    try {
      known = { stats: await Promise.race([outboxStats(), late]), atMs: Date.now() };
    } catch {
      /* keep the last values */
    } finally {
      clearTimeout(timer);
    }
    return known.stats;
  };
  const stats = () => (last ??= read().finally(() => setTimeout(() => (last = null), 0)));
  new Gauge({
    name: 'outbox_stats_age_seconds',
    help: 'Age of the outbox gauges: they keep their last values while the database does not answer',
    registers: [registry],
    async collect() {
      await stats();
      this.set(known.atMs === 0 ? -1 : (Date.now() - known.atMs) / 1000);
    },
  });
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
  const circuitOpen = new Gauge({
    name: 'outbox_circuit_open',
    help: 'Whether this process takes the data platform for down (1): one probe at a time until one is accepted',
    registers: [registry],
  });
  const relayErrors = new Counter({
    name: 'outbox_relay_errors_total',
    help: 'Relay rounds that failed (for example the database was unreachable)',
    registers: [registry],
  });
  // Purges: `purge` is the job's name (idempotency_keys, outbox_delivered), a fixed set.
  const purgeBacklog = new Gauge({
    name: 'purge_backlog_rows',
    help: 'Rows past retention still waiting to be purged, as of this process\'s last pass: 0 when it cleared everything, else the planner\'s estimate',
    labelNames: ['purge'],
    registers: [registry],
  });
  const purgedRows = new Counter({
    name: 'purge_rows_total',
    help: 'Rows past retention deleted by this process',
    labelNames: ['purge'],
    registers: [registry],
  });
  const purgePasses = new Counter({
    name: 'purge_passes_total',
    help: 'Purge passes by outcome: done (nothing left), more (time budget spent, next pass soon), failed (retried with backoff)',
    labelNames: ['purge', 'outcome'],
    registers: [registry],
  });
  return {
    registry,
    observeRequest(method, route, status, code, seconds) {
      requests.observe({ method, route, status_code: String(status) }, seconds);
      const counter = OUTCOME_COUNTERS[`${method} ${route}`];
      if (counter) outcomes[counter].inc({ outcome: status < 400 ? 'created' : (code ?? `HTTP_${status}`) });
    },
    observeReplicaRead(on) {
      replicaReads.inc({ on });
    },
    observeRefusedConnection() {
      refusedConnections.inc();
    },
    relayObserver: {
      circuit(open) {
        circuitOpen.set(open ? 1 : 0);
      },
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
    purgeObserver: {
      pass(purge, pass) {
        // Every outcome's series from the first pass on, so increase() sees a first failure.
        for (const outcome of ['done', 'more', 'failed']) purgePasses.inc({ purge, outcome }, 0);
        purgePasses.inc({ purge, outcome: pass.outcome });
        if (pass.deleted > 0) purgedRows.inc({ purge }, pass.deleted);
        if (pass.backlog !== null) purgeBacklog.set({ purge }, pass.backlog);
      },
    },
  };
}

/** Answers with the Prometheus text of `metrics`. */
export async function sendMetrics(metrics: Metrics, reply: FastifyReply): Promise<FastifyReply> {
  const text = await metrics.registry.metrics();
  return reply.type(metrics.registry.contentType).serializer((x: unknown) => x as string).send(text);
}

/**
 * The listener of METRICS_PORT: `GET /metrics` without a token, for a scraper inside the network,
 * and nothing else (every other path is 404). Keep the port off the public network.
 */
export function buildMetricsApp(metrics: Metrics, logger?: FastifyBaseLogger): FastifyInstance {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, problem('NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}: this port serves only GET /metrics`)),
  );
  app.get('/metrics', async (_req, reply) => sendMetrics(metrics, reply));
  return app;
}
