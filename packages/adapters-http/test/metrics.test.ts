import { expect, test } from 'vitest';
import { createMetrics } from '../src/metrics.ts';

test('a scrape answers while the outbox query cannot: the last values, and how old they are', async () => {
  let mode: 'ok' | 'hang' | 'fail' = 'ok';
  const metrics = createMetrics({
    outboxStats: () =>
      mode === 'ok'
        ? Promise.resolve({ backlog: 7, failing: 2, oldestUndeliveredSeconds: 30 })
        : mode === 'fail'
          ? Promise.reject(new Error('timeout exceeded when trying to connect'))
          : new Promise(() => undefined),
  });
  const scrape = async () => {
    await new Promise((r) => setTimeout(r, 10)); // one query serves one scrape's gauges, not the next scrape
    const started = Date.now();
    const text = await metrics.registry.metrics();
    return { text, ms: Date.now() - started };
  };
  const fresh = await scrape();
  expect(fresh.text).toMatch(/^outbox_backlog_events 7$/m);
  expect(fresh.text).toMatch(/^outbox_stats_age_seconds 0(\.\d+)?$/m);

  mode = 'hang'; // a saturated pool: the query waits
  const stuck = await scrape();
  expect(stuck.ms).toBeLessThan(2_000);
  expect(stuck.text).toMatch(/^outbox_backlog_events 7$/m);
  expect(stuck.text).toMatch(/^outbox_failing_events 2$/m);
  expect(Number(/^outbox_stats_age_seconds (\S+)$/m.exec(stuck.text)![1])).toBeGreaterThanOrEqual(1);

  mode = 'fail'; // the database is away
  expect((await scrape()).text).toMatch(/^outbox_backlog_events 7$/m);
});
