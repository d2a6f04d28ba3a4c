import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutboxStats, RelayObserver } from '@shop/application';

export interface Metrics {
  readonly registry: Registry;
  /** Feeds delivery outcomes from the outbox relay. */
  readonly relayObserver: RelayObserver;
}

/**
 * Prometheus metrics. The outbox gauges are read from the database at scrape time, so every
 * API process reports the shared backlog (aggregate them with max(), not sum()).
 */
export function createMetrics(outboxStats: () => Promise<OutboxStats>): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

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
