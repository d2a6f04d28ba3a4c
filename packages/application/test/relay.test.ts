import { describe, expect, test } from 'vitest';
import {
  OutboxRelay,
  retryDelayMs,
  systemClock,
  type EventPublisher,
  type OutboxRecord,
  type OutboxStore,
} from '@shop/application';

/** An outbox in memory with the same lease semantics as the Postgres one, on a manual clock. */
class MemoryOutbox implements Pick<OutboxStore, 'claim' | 'renewLease' | 'releaseLease' | 'markDelivered' | 'markFailed' | 'purgeDelivered' | 'estimateDelivered'> {
  now = 0;
  readonly rows = new Map<string, { record: OutboxRecord; dueAt: number; deliveredAt: number | null; lastError: string | null }>();

  add(eventId: string): void {
    this.rows.set(eventId, {
      record: { eventId, type: 'order.paid', payload: { eventId }, attempts: 0, createdAt: new Date(this.now) },
      dueAt: this.now,
      deliveredAt: null,
      lastError: null,
    });
  }
  /** As write_order_group writes a new order's event with a lease: claimed by the writer already. */
  addLeased(eventId: string, leaseMs: number): OutboxRecord {
    const record = { eventId, type: 'order.paid', payload: { eventId }, attempts: 1, createdAt: new Date(this.now) };
    this.rows.set(eventId, { record, dueAt: this.now + leaseMs, deliveredAt: null, lastError: null });
    return record;
  }
  async claim(limit: number, leaseMs: number) {
    const due = [...this.rows.values()].filter((r) => r.deliveredAt === null && r.dueAt <= this.now).slice(0, limit);
    for (const r of due) {
      r.record = { ...r.record, attempts: r.record.attempts + 1 };
      r.dueAt = this.now + leaseMs;
    }
    return due.map((r) => r.record);
  }
  readonly renewed: string[] = [];
  async renewLease(claims: ReadonlyArray<Pick<OutboxRecord, 'eventId' | 'attempts'>>, leaseMs: number) {
    for (const c of claims) {
      this.renewed.push(c.eventId);
      const r = this.rows.get(c.eventId)!;
      if (r.deliveredAt === null && r.record.attempts === c.attempts) r.dueAt = this.now + leaseMs;
    }
  }
  async releaseLease(claims: ReadonlyArray<Pick<OutboxRecord, 'eventId' | 'attempts'>>) {
    for (const c of claims) {
      const r = this.rows.get(c.eventId)!;
      if (r.deliveredAt === null && r.record.attempts === c.attempts) {
        r.dueAt = this.now;
        r.record = { ...r.record, attempts: r.record.attempts - 1 };
      }
    }
  }
  async markDelivered(ids: readonly string[]) {
    for (const id of ids) this.rows.get(id)!.deliveredAt = this.now;
  }
  async markFailed(id: string, retryInMs: number, error: string) {
    const r = this.rows.get(id)!;
    r.dueAt = this.now + retryInMs;
    r.lastError = error;
  }
  async purgeDelivered(before: Date, limit: number) {
    let n = 0;
    for (const [id, r] of this.rows) if (n < limit && r.deliveredAt !== null && r.deliveredAt < before.getTime()) (this.rows.delete(id), n++);
    return { deleted: n, done: n < limit, resume: null };
  }
  async estimateDelivered(before: Date) {
    return [...this.rows.values()].filter((r) => r.deliveredAt !== null && r.deliveredAt < before.getTime()).length;
  }
}

function relayOver(outbox: MemoryOutbox, publish: (r: OutboxRecord) => Promise<void>, delivered: string[] = [], batchSize = 10) {
  const publisher: EventPublisher = {
    async publish(r) {
      await publish(r);
      delivered.push(r.eventId);
    },
    close: async () => undefined,
  };
  const store = outbox as unknown as OutboxStore;
  return new OutboxRelay(
    { store, publisher, clock: systemClock },
    { batchSize, concurrency: 4, leaseMs: 30_000, backoff: { baseMs: 100, capMs: 1_000 } },
  );
}

describe('retry backoff', () => {
  test('doubles per attempt with jitter in [half, full], and is capped', () => {
    const policy = { baseMs: 100, capMs: 1_000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, policy, () => 1))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, policy, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect(retryDelayMs(10_000, policy, () => 1)).toBe(1_000);
  });
});

describe('outbox relay', () => {
  test('a failing record is retried on its own backoff and never holds the others', async () => {
    const outbox = new MemoryOutbox();
    for (const id of ['a', 'poison', 'b', 'c']) outbox.add(id);
    const delivered: string[] = [];
    const relay = relayOver(outbox, async (r) => {
      if (r.eventId === 'poison') throw new Error('HTTP 500');
    }, delivered);

    expect(await relay.deliverBatch()).toBe(4);
    expect(delivered.sort()).toEqual(['a', 'b', 'c']);
    const poison = outbox.rows.get('poison')!;
    expect(poison.deliveredAt).toBeNull();
    expect(poison.lastError).toBe('HTTP 500');
    expect(poison.dueAt).toBeGreaterThanOrEqual(50);
    expect(poison.dueAt).toBeLessThanOrEqual(100);

    // Not due yet: nothing is claimed; once due, it is tried again, with attempts counted.
    expect(await relay.deliverBatch()).toBe(0);
    outbox.now = poison.dueAt;
    expect(await relay.deliverBatch()).toBe(1);
    expect(outbox.rows.get('poison')!.record.attempts).toBe(2);
    expect(outbox.rows.get('poison')!.dueAt - outbox.now).toBeGreaterThanOrEqual(100);
  });

  test('the circuit: after 10 failures in a row, one record at a time (a probe) when due; the first acceptance resumes whole batches', async () => {
    const outbox = new MemoryOutbox();
    for (let i = 0; i < 40; i++) outbox.add(`e${i}`);
    let down = true;
    const delivered: string[] = [];
    const relay = relayOver(outbox, async () => {
      if (down) throw new Error('connect ECONNREFUSED');
    }, delivered);
    // A batch of 10 with 4 at a time: the 10th failure opens the circuit.
    expect(await relay.deliverBatch()).toBe(10);
    expect(relay.circuitOpen).toBe(true);
    // Open: nothing is claimed before the probe is due (the relay's clock is real: at most 100 ms).
    expect(await relay.deliverBatch()).toBe(0);
    await new Promise((r) => setTimeout(r, 120));
    outbox.now = 1_000_000; // every record due again
    expect(await relay.deliverBatch()).toBe(1); // one probe, refused
    expect(relay.circuitOpen).toBe(true);
    await new Promise((r) => setTimeout(r, 250));
    down = false;
    expect(await relay.deliverBatch()).toBe(1); // the probe accepted: closed
    expect(relay.circuitOpen).toBe(false);
    expect(await relay.deliverBatch()).toBe(10);
    expect(delivered).toHaveLength(11);
  });

  test('probes back off to probeMaxMs, not to the retry cap: delivery resumes soon after the platform answers again', async () => {
    const outbox = new MemoryOutbox();
    for (let i = 0; i < 20; i++) outbox.add(`e${i}`);
    const publisher: EventPublisher = { publish: async () => Promise.reject(new Error('connect ECONNREFUSED')), close: async () => undefined };
    const relay = new OutboxRelay(
      { store: outbox as unknown as OutboxStore, publisher, clock: systemClock },
      { batchSize: 10, concurrency: 4, leaseMs: 30_000, backoff: { baseMs: 100, capMs: 60_000 }, probeMaxMs: 200 },
    );
    await relay.deliverBatch();
    expect(relay.circuitOpen).toBe(true);
    // Seven failed probes: with the retry cap they would wait 50–100, 100–200, … 3.2–6.4 s; here 200 ms at most each.
    const t0 = Date.now();
    let probes = 0;
    while (probes < 7) {
      outbox.now += 1_000_000; // every record due
      if ((await relay.deliverBatch()) === 1) probes++;
      else await new Promise((r) => setTimeout(r, 10));
    }
    expect(Date.now() - t0).toBeLessThan(2_500);
  });

  test('the records of a batch not tried when the circuit opened are given back at once, their claim not counted', async () => {
    const outbox = new MemoryOutbox();
    for (let i = 0; i < 30; i++) outbox.add(`e${i}`);
    const relay = relayOver(outbox, async () => {
      throw new Error('connect ECONNREFUSED');
    }, [], 30);
    expect(await relay.deliverBatch()).toBe(30);
    expect(relay.circuitOpen).toBe(true);
    const rows = [...outbox.rows.values()];
    const tried = rows.filter((r) => r.lastError !== null);
    const untried = rows.filter((r) => r.lastError === null);
    // The 10th failure opened it; the workers' tries in flight then still ended.
    expect(tried.length).toBeGreaterThanOrEqual(10);
    expect(tried.length).toBeLessThan(14);
    // Not waiting out the 30 s lease: due now, with no attempt counted.
    expect(untried.length).toBe(30 - tried.length);
    expect(untried.every((r) => r.dueAt === outbox.now && r.record.attempts === 0)).toBe(true);
  });

  test('a claimed record is left alone by a second relay until its lease runs out', async () => {
    const outbox = new MemoryOutbox();
    outbox.add('x');
    const first = await outbox.claim(10, 30_000);
    expect(first.map((r) => r.eventId)).toEqual(['x']);
    const other = relayOver(outbox, async () => undefined);
    expect(await other.deliverBatch()).toBe(0);
    outbox.now += 30_000; // the first relay died without marking it
    expect(await other.deliverBatch()).toBe(1);
    expect(outbox.rows.get('x')!.deliveredAt).not.toBeNull();
  });

  test('stop() lets the batch in flight finish and claims nothing after', async () => {
    const outbox = new MemoryOutbox();
    for (let i = 0; i < 5; i++) outbox.add(`e${i}`);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const delivered: string[] = [];
    const relay = relayOver(outbox, () => gate, delivered);
    relay.start();
    await new Promise((r) => setTimeout(r, 20));
    const stopped = relay.stop();
    outbox.add('late');
    release();
    await stopped;
    expect(delivered.sort()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(outbox.rows.get('late')!.record.attempts).toBe(0);
  });

  test('wake() delivers at once instead of waiting for the poll', async () => {
    const outbox = new MemoryOutbox();
    const delivered: string[] = [];
    const publisher: EventPublisher = { publish: async (r) => void delivered.push(r.eventId), close: async () => undefined };
    const relay = new OutboxRelay({ store: outbox as unknown as OutboxStore, publisher, clock: systemClock }, { pollMs: 60_000 });
    relay.start();
    await new Promise((r) => setTimeout(r, 20));
    outbox.add('now');
    relay.wake();
    for (let i = 0; i < 100 && delivered.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await relay.stop();
    expect(delivered).toEqual(['now']);
  });
});

describe('events handed over at commit (ADR 0003)', () => {
  const until = async (done: () => boolean) => {
    for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  };

  test('a handed-over event is delivered from memory and marked, never claimed; another relay leaves it alone meanwhile', async () => {
    const outbox = new MemoryOutbox();
    const delivered: string[] = [];
    let hold!: () => void;
    const gate = new Promise<void>((r) => (hold = r));
    const tried: string[] = [];
    const relay = relayOver(outbox, (r) => (tried.push(r.eventId), r.eventId === 'h' ? gate : Promise.resolve()), delivered);
    relay.start();
    const slot = relay.reserve()!;
    expect(slot.leaseMs).toBe(30_000);
    const record = outbox.addLeased('h', slot.leaseMs); // the commit
    slot.deliver(record);
    await until(() => tried.includes('h'));
    // While it is being delivered: not due, so no relay claims it.
    const other = relayOver(outbox, async () => undefined);
    expect(await other.deliverBatch()).toBe(0);
    hold();
    await until(() => outbox.rows.get('h')!.deliveredAt !== null);
    await relay.stop();
    expect(delivered).toEqual(['h']);
    expect(outbox.rows.get('h')!.record.attempts).toBe(1);
  });

  test('slots are bounded by handoverMax, and none is given while stopped or while the circuit is open', async () => {
    const outbox = new MemoryOutbox();
    const publisher: EventPublisher = { publish: async () => Promise.reject(new Error('connect ECONNREFUSED')), close: async () => undefined };
    const relay = new OutboxRelay({ store: outbox as unknown as OutboxStore, publisher, clock: systemClock },
      { handoverMax: 2, batchSize: 10, concurrency: 4, pollMs: 60_000 });
    expect(relay.reserve()).toBeNull(); // not started
    relay.start();
    const [a, b] = [relay.reserve()!, relay.reserve()!];
    expect(relay.reserve()).toBeNull();
    a.release();
    a.release(); // once only
    const c = relay.reserve()!;
    expect(relay.reserve()).toBeNull();
    b.release();
    c.release();
    // Ten refused deliveries open the circuit: no slot then, the events are written due and claimed.
    for (let i = 0; i < 10; i++) outbox.add(`e${i}`);
    relay.wake();
    await until(() => relay.circuitOpen);
    expect(relay.circuitOpen).toBe(true);
    expect(relay.reserve()).toBeNull();
    await relay.stop();
    expect(relay.reserve()).toBeNull();
  });

  test('what stop() leaves handed over and untried is given back due at once, its claim not counted; so is one handed over after', async () => {
    const outbox = new MemoryOutbox();
    let hold!: () => void;
    const gate = new Promise<void>((r) => (hold = r));
    const [delivered, tried] = [[] as string[], [] as string[]];
    const relay = relayOver(outbox, (r) => (tried.push(r.eventId), r.eventId === 'first' ? gate : Promise.resolve()), delivered);
    relay.start();
    const first = relay.reserve()!;
    first.deliver(outbox.addLeased('first', first.leaseMs));
    await until(() => tried.includes('first'));
    // Handed over while 'first' is being delivered: they wait for the next round, and stop() comes first.
    const [waiting, late] = [relay.reserve()!, relay.reserve()!];
    waiting.deliver(outbox.addLeased('waiting', waiting.leaseMs));
    const stopped = relay.stop();
    hold();
    await stopped;
    late.deliver(outbox.addLeased('late', late.leaseMs));
    await until(() => outbox.rows.get('late')!.record.attempts === 0);
    expect(delivered).toEqual(['first']);
    for (const id of ['waiting', 'late']) {
      const row = outbox.rows.get(id)!;
      expect([row.dueAt, row.record.attempts, row.deliveredAt]).toEqual([outbox.now, 0, null]);
    }
  });

  test('a handed-over event the platform refuses is retried on its own backoff, as a claimed one is', async () => {
    const outbox = new MemoryOutbox();
    const relay = relayOver(outbox, async () => {
      throw new Error('the data platform answered HTTP 500');
    });
    relay.start();
    const slot = relay.reserve()!;
    slot.deliver(outbox.addLeased('r', slot.leaseMs));
    await until(() => outbox.rows.get('r')!.lastError !== null);
    await relay.stop();
    const row = outbox.rows.get('r')!;
    expect(row.lastError).toContain('HTTP 500');
    expect(row.dueAt).toBeGreaterThanOrEqual(50); // attempt 1's backoff, not the lease
    expect(row.dueAt).toBeLessThanOrEqual(100);
  });

  test('rounds of handed-over events alternate with claims: a due record is delivered while events keep being handed over', async () => {
    const outbox = new MemoryOutbox();
    const delivered: string[] = [];
    const relay = relayOver(outbox, async () => new Promise((r) => setTimeout(r, 2)), delivered, 2);
    const hand = () => {
      const slot = relay.reserve();
      if (slot) slot.deliver(outbox.addLeased(`h${outbox.rows.size}`, slot.leaseMs));
    };
    relay.start();
    for (let i = 0; i < 6; i++) hand();
    // Handed over faster than delivered: the relay always has some waiting when it looks.
    const feeding = setInterval(() => (hand(), hand()), 1);
    await until(() => delivered.length >= 4);
    outbox.add('due');
    const before = delivered.length;
    await until(() => delivered.includes('due'));
    clearInterval(feeding);
    await relay.stop();
    expect(delivered).toContain('due');
    expect(delivered.indexOf('due') - before).toBeLessThan(8);
  });

  test('events waiting for a round keep their lease however long the round before them takes', async () => {
    const outbox = new MemoryOutbox();
    let hold!: () => void;
    const gate = new Promise<void>((r) => (hold = r));
    const tried: string[] = [];
    const publisher: EventPublisher = { publish: async (r) => (tried.push(r.eventId), r.eventId === 'slow' ? gate : undefined), close: async () => undefined };
    // A lease of 150 ms, renewed every 50: the round of 'slow' outlasts it.
    const relay = new OutboxRelay({ store: outbox as unknown as OutboxStore, publisher, clock: systemClock }, { leaseMs: 150, concurrency: 1, pollMs: 60_000 });
    relay.start();
    const slow = relay.reserve()!;
    slow.deliver(outbox.addLeased('slow', slow.leaseMs));
    await until(() => tried.includes('slow'));
    const waiting = relay.reserve()!;
    waiting.deliver(outbox.addLeased('waiting', waiting.leaseMs)); // due at 150 unless renewed
    outbox.now = 120;
    // Both renewed at the new time: 'slow' by its batch, 'waiting' in the queue.
    await until(() => outbox.rows.get('waiting')!.dueAt > 150 && outbox.rows.get('slow')!.dueAt > 150);
    expect(outbox.rows.get('waiting')!.dueAt).toBe(270);
    outbox.now = 200; // past its first lease: another relay must still find it leased
    expect(await relayOver(outbox, async () => undefined).deliverBatch()).toBe(0);
    hold();
    await until(() => outbox.rows.get('waiting')!.deliveredAt !== null);
    await relay.stop();
    expect(outbox.rows.get('waiting')!.record.attempts).toBe(1);
  });

  test('an event handed over a third of its lease after its slot was taken is renewed at once', async () => {
    const outbox = new MemoryOutbox();
    let t = 0;
    const clock = { now: () => new Date(t) };
    const publisher: EventPublisher = { publish: async () => new Promise((r) => setTimeout(r, 20)), close: async () => undefined };
    const relay = new OutboxRelay({ store: outbox as unknown as OutboxStore, publisher, clock }, { leaseMs: 30_000, pollMs: 60_000 });
    relay.start();
    const [prompt, late] = [relay.reserve()!, relay.reserve()!];
    prompt.deliver(outbox.addLeased('prompt', prompt.leaseMs));
    t = 10_001; // the write of 'late' took a third of the lease
    late.deliver(outbox.addLeased('late', late.leaseMs));
    await until(() => outbox.rows.get('late')!.deliveredAt !== null);
    await relay.stop();
    expect(outbox.renewed).toEqual(['late']);
  });
});
