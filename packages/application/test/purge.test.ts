import { describe, expect, test } from 'vitest';
import {
  nextPurgeInMs,
  OutboxRelay,
  PurgeJob,
  type Clock,
  type EventPublisher,
  type OutboxStore,
  type PurgeBatch,
  type Purgeable,
  type PurgePass,
  type PurgePolicy,
} from '@shop/application';

const POLICY: PurgePolicy = { batchSize: 10, passBudgetMs: 250, intervalMs: 60_000, retry: { baseMs: 1_000, capMs: 8_000 } };

/** A clock that moves only when told (each batch takes `batchMs` of it). */
class ManualClock implements Clock {
  ms = 1_000_000;
  now = () => new Date(this.ms);
}

/** `rows` expired rows deleted `limit` at a time; each batch costs `batchMs` on the clock; `fail` makes the next batches throw. */
class FakeTable implements Purgeable {
  calls: Array<{ before: number; limit: number; resume: string | null }> = [];
  fail: Error | null = null;
  rows: number;
  private readonly clock: ManualClock;
  private readonly batchMs: number;
  constructor(rows: number, clock: ManualClock, batchMs = 100) {
    this.rows = rows;
    this.clock = clock;
    this.batchMs = batchMs;
  }
  async purgeBatch(before: Date, limit: number, resume: string | null): Promise<PurgeBatch> {
    this.calls.push({ before: before.getTime(), limit, resume });
    this.clock.ms += this.batchMs;
    if (this.fail) throw this.fail;
    const deleted = Math.min(limit, this.rows);
    this.rows -= deleted;
    return { deleted, done: deleted < limit, resume: `after-${this.calls.length}` };
  }
  async estimateExpired(): Promise<number> {
    return this.rows;
  }
}

function jobOver(table: FakeTable, clock: ManualClock, passes: PurgePass[] = [], policy: Partial<PurgePolicy> = POLICY) {
  return new PurgeJob(
    { name: 'fake', target: table, clock, observer: { pass: (_name, p) => passes.push(p) } },
    { retentionMs: 3_600_000, policy },
  );
}

describe('purge schedule', () => {
  test('after a clean pass the interval; after one out of budget twice the budget; after a failure backoff from the base, capped', () => {
    expect(nextPurgeInMs('done', 0, POLICY)).toBe(60_000);
    expect(nextPurgeInMs('more', 0, POLICY)).toBe(500);
    expect([1, 2, 3, 4, 5, 6].map((n) => nextPurgeInMs('failed', n, POLICY, () => 1))).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(nextPurgeInMs('failed', 1, POLICY, () => 0)).toBe(500);
    // Never later than a clean pass would have waited.
    expect(nextPurgeInMs('failed', 9, { ...POLICY, intervalMs: 3_000 }, () => 1)).toBe(3_000);
    expect(nextPurgeInMs('more', 0, { ...POLICY, passBudgetMs: 10_000, intervalMs: 5_000 })).toBe(5_000);
  });
});

describe('purge job', () => {
  test('a backlog within the budget is cleared in one pass of batches, each resuming where the last stopped', async () => {
    const clock = new ManualClock();
    const table = new FakeTable(25, clock, 10);
    const passes: PurgePass[] = [];
    const job = jobOver(table, clock, passes);
    const startedAt = clock.ms;
    const pass = await job.runOnce();
    expect(pass).toMatchObject({ outcome: 'done', deleted: 25, batches: 3, backlog: 0, nextInMs: 60_000 });
    expect(table.calls.map((c) => c.resume)).toEqual([null, 'after-1', 'after-2']);
    // The cutoff is fixed for the pass: the retention before its start.
    expect(new Set(table.calls.map((c) => c.before))).toEqual(new Set([startedAt - 3_600_000]));
    expect(table.calls.every((c) => c.limit === 10)).toBe(true);
    expect(job.lastSuccessAt?.getTime()).toBe(clock.ms);
    expect(job.nextAt?.getTime()).toBe(clock.ms + 60_000);
    expect(passes).toEqual([pass]);
  });

  test('a backlog larger than the budget: the pass stops after the budget, reports the estimate left, and the next one comes soon', async () => {
    const clock = new ManualClock();
    const table = new FakeTable(1_000, clock, 100);
    const job = jobOver(table, clock);
    const first = await job.runOnce();
    // Batches at 100 ms each under a 250 ms budget: the third ends past it, no fourth starts.
    expect(first).toMatchObject({ outcome: 'more', deleted: 30, batches: 3, backlog: 970, nextInMs: 500 });
    expect(job.nextAt?.getTime()).toBe(clock.ms + 500);
    expect(job.lastSuccessAt?.getTime()).toBe(clock.ms);
    // The next pass starts over (a new cutoff, no resume from the last pass).
    table.calls = [];
    await job.runOnce();
    expect(table.calls[0]!.resume).toBeNull();
    let passes = 2;
    let last: PurgePass;
    do {
      last = await job.runOnce();
      passes++;
    } while (last.outcome === 'more');
    // 30 rows a pass; the 34th deletes the last 10 and finds nothing more.
    expect(table.rows).toBe(0);
    expect(passes).toBe(34);
    expect(last).toMatchObject({ outcome: 'done', deleted: 10, backlog: 0 });
  });

  test('a failed pass is retried soon with growing backoff, its last success does not advance, and a success resets the backoff', async () => {
    const clock = new ManualClock();
    const table = new FakeTable(15, clock, 10);
    const passes: PurgePass[] = [];
    const job = jobOver(table, clock, passes);
    await job.runOnce();
    const succeeded = job.lastSuccessAt;
    expect(succeeded).not.toBeNull();

    table.rows = 15;
    table.fail = new Error('canceling statement due to statement timeout');
    const failed = await job.runOnce();
    expect(failed).toMatchObject({ outcome: 'failed', backlog: null });
    expect(failed.error).toBe(table.fail);
    expect(failed.nextInMs).toBeGreaterThanOrEqual(500);
    expect(failed.nextInMs).toBeLessThanOrEqual(1_000);
    expect(job.nextAt?.getTime()).toBe(clock.ms + failed.nextInMs);
    expect(job.lastSuccessAt).toBe(succeeded);
    const again = await job.runOnce();
    expect(again.nextInMs).toBeGreaterThanOrEqual(1_000);
    expect(again.nextInMs).toBeLessThanOrEqual(2_000);
    expect(job.lastSuccessAt).toBe(succeeded);

    table.fail = null;
    expect(await job.runOnce()).toMatchObject({ outcome: 'done', deleted: 15, nextInMs: 60_000 });
    expect(job.lastSuccessAt!.getTime()).toBeGreaterThan(succeeded!.getTime());
    table.fail = new Error('again');
    expect((await job.runOnce()).nextInMs).toBeLessThanOrEqual(1_000);
  });

  test('started, it runs its passes on its own timer: soon while behind, and stop() ends them', async () => {
    const clock = new ManualClock();
    const table = new FakeTable(100, clock, 100);
    const passes: PurgePass[] = [];
    // A 100 ms budget: each pass is one 100 ms batch (on the manual clock), the next 200 ms later (real time).
    const job = jobOver(table, clock, passes, { ...POLICY, passBudgetMs: 100 });
    job.start(0);
    await until(() => passes.length >= 3);
    expect(passes.slice(0, 3).map((p) => p.outcome)).toEqual(['more', 'more', 'more']);
    await job.stop();
    const stoppedAt = passes.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(passes.length).toBe(stoppedAt);
    expect(job.nextAt).toBeNull();
  });
});

describe('the relay purge', () => {
  test('a failing purge does not advance the last purge, is retried soon, and deliveries go on meanwhile', async () => {
    let purgeCalls = 0;
    let failing = true;
    const delivered: string[] = [];
    let pending = ['a', 'b'];
    const store = {
      async claim() {
        const claimed = pending.map((eventId) => ({ eventId, type: 'order.paid', payload: {}, attempts: 1, createdAt: new Date() }));
        pending = [];
        return claimed;
      },
      async markDelivered(ids: readonly string[]) {
        delivered.push(...ids);
      },
      async markFailed() {},
      async purgeDelivered(): Promise<PurgeBatch> {
        purgeCalls++;
        if (failing) throw new Error('canceling statement due to statement timeout');
        return { deleted: 0, done: true, resume: null };
      },
      async estimateDelivered() {
        return 0;
      },
    } as unknown as OutboxStore;
    const publisher: EventPublisher = { publish: async () => undefined, close: async () => undefined };
    const passes: PurgePass[] = [];
    const relay = new OutboxRelay(
      { store, publisher, clock: { now: () => new Date() }, purgeObserver: { pass: (_n, p) => passes.push(p) } },
      { pollMs: 10, purge: { batchSize: 10, passBudgetMs: 5, intervalMs: 60_000, retry: { baseMs: 20, capMs: 40 } } },
    );
    relay.start();
    try {
      await until(() => purgeCalls >= 3);
      expect(relay.purge.lastSuccessAt).toBeNull();
      expect(passes.every((p) => p.outcome === 'failed')).toBe(true);
      expect(relay.purge.nextAt!.getTime() - Date.now()).toBeLessThanOrEqual(40);
      expect(delivered).toEqual(['a', 'b']);
      failing = false;
      await until(() => relay.purge.lastSuccessAt !== null);
      expect(relay.purge.nextAt!.getTime() - Date.now()).toBeGreaterThan(50_000);
    } finally {
      await relay.stop();
    }
  });
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
