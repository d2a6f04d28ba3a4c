import type { Clock } from '../ports/clock.ts';
import type { EventPublisher, HandoverSlot, OutboxRecord, OutboxStore } from '../ports/outbox.ts';
import { DEFAULT_BACKOFF, retryDelayMs, type BackoffPolicy } from './backoff.ts';
import { DEFAULT_PURGE_POLICY, PurgeJob, type PurgeObserver, type PurgePolicy } from '../maintenance/purge-job.ts';

export interface RelayOptions {
  /** Records claimed per round trip. */
  readonly batchSize: number;
  /** Deliveries in flight at once within a batch. */
  readonly concurrency: number;
  /**
   * How long a claim keeps other relays away; longer than a delivery's timeout, and renewed every
   * third of it while the batch is delivered, so a slow batch is never claimed by another relay.
   */
  readonly leaseMs: number;
  /** The safety net: look for due records this often even if nobody woke the relay. */
  readonly pollMs: number;
  readonly backoff: BackoffPolicy;
  /** Delivered records are kept this long, then purged. */
  readonly retentionMs: number;
  /** How that purge deletes and is scheduled. */
  readonly purge: PurgePolicy;
  /**
   * The circuit breaker: after this many failed deliveries in a row the platform is taken for down,
   * and only one record at a time is tried (a probe), backing off like a record's retries, until
   * one is accepted. The backlog waits in the outbox meanwhile, costing the database nothing.
   */
  readonly openAfterFailures: number;
  /**
   * The longest wait between probes, below the retry cap: a probe is one record's try (two short
   * statements), and delivery resumes at most this long after the platform answers again (a NATS
   * stream whose leader was killed elects another in seconds; the retry cap is a minute).
   */
  readonly probeMaxMs: number;
  /**
   * New orders' events held at most for delivery from memory (handed over at commit, reserved
   * before it); past it, an event is written due and claimed as any other. What a crash strands
   * waits out its lease, as a claimed batch does.
   */
  readonly handoverMax: number;
}

export const DEFAULT_RELAY_OPTIONS: RelayOptions = {
  batchSize: 100,
  concurrency: 16,
  leaseMs: 30_000,
  pollMs: 1_000,
  backoff: DEFAULT_BACKOFF,
  retentionMs: 7 * 86_400_000,
  purge: DEFAULT_PURGE_POLICY,
  openAfterFailures: 10,
  probeMaxMs: 2_000,
  handoverMax: 1_000,
};

export interface RelayObserver {
  delivered?(record: OutboxRecord, lagMs: number): void;
  failed?(record: OutboxRecord, error: string, retryInMs: number): void;
  crashed?(error: unknown): void;
  /** The circuit opened (the platform taken for down) or closed (a probe was accepted). */
  circuit?(open: boolean): void;
}

/**
 * Delivers recorded events to the platform: at least once, with the same eventId every time,
 * retrying each failed record on its own backoff so that one bad record never holds the others.
 * Woken on commit (in process, and through the wake channel from other processes); polls only as
 * the safety net.
 */
export class OutboxRelay {
  private readonly store: OutboxStore;
  private readonly publisher: EventPublisher;
  private readonly clock: Clock;
  private readonly observer: RelayObserver;
  private readonly options: RelayOptions;
  private running: Promise<void> | null = null;
  private stopping = false;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  /** Failed deliveries in a row, across batches; any acceptance resets it. */
  private failuresInRow = 0;
  /** While open: when the next probe may go, and how many probes failed so far. */
  private breaker: { nextProbeAt: number; probesFailed: number } | null = null;
  /** Events handed over at their commit, not yet in a batch; slots reserved for writes not yet answered. */
  private handed: OutboxRecord[] = [];
  private reserved = 0;
  /** Renews the leases of the events waiting in `handed`, whatever the loop is doing. */
  private queueRenewal: ReturnType<typeof setInterval> | null = null;
  /** Renewals in flight outside a batch's own: a record's failure is marked only once they landed. */
  private readonly renewals = new Set<Promise<void>>();
  /** After a round of handed events, the next round claims: retries and others' events are never starved. */
  private claimNext = false;
  /**
   * Deletes delivered records past the retention, beside the deliveries (its passes never hold a
   * batch back); its `lastSuccessAt` is the last purge that did not fail.
   */
  readonly purge: PurgeJob;

  constructor(
    deps: { store: OutboxStore; publisher: EventPublisher; clock: Clock; observer?: RelayObserver; purgeObserver?: PurgeObserver },
    options: Partial<RelayOptions> = {},
  ) {
    this.store = deps.store;
    this.publisher = deps.publisher;
    this.clock = deps.clock;
    this.observer = deps.observer ?? {};
    this.options = { ...DEFAULT_RELAY_OPTIONS, ...options };
    const store = this.store;
    this.purge = new PurgeJob(
      {
        name: 'outbox_delivered',
        target: {
          purgeBatch: (before, limit, resume) => store.purgeDelivered(before, limit, resume),
          estimateExpired: (before) => store.estimateDelivered(before),
        },
        clock: this.clock,
        observer: deps.purgeObserver ?? {},
      },
      { retentionMs: this.options.retentionMs, policy: this.options.purge },
    );
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.loop();
    this.purge.start();
    // Events handed over wait for a round, which can take longer than their lease (a slow platform,
    // a long claimed batch before them): every third of it, theirs is renewed.
    this.queueRenewal = setInterval(() => {
      if (this.handed.length > 0) this.renewInBackground([...this.handed]);
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
  }

  /** A renewal that no batch awaits; failures of records it names are marked after it lands. */
  private renewInBackground(records: OutboxRecord[]): void {
    const p: Promise<void> = this.store
      .renewLease(records, this.options.leaseMs)
      .catch((err: unknown) => this.observer.crashed?.(err))
      .finally(() => this.renewals.delete(p));
    this.renewals.add(p);
  }

  /** New records were committed: look now instead of at the next poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /**
   * A slot for a new order's event, to be written leased and handed over at commit; null while
   * this relay is not delivering (stopped, or the platform taken for down) or holds enough.
   */
  reserve(): HandoverSlot | null {
    if (!this.running || this.stopping || this.breaker || this.reserved + this.handed.length >= this.options.handoverMax) return null;
    this.reserved++;
    const reservedAt = this.clock.now().getTime();
    let open = true;
    return {
      leaseMs: this.options.leaseMs,
      deliver: (record) => {
        if (!open) return;
        open = false;
        this.reserved--;
        if (this.running && !this.stopping) {
          this.handed.push(record);
          // Its lease started with the write's transaction: a write that took a third of it (a long
          // queue, an answer lost and looked for) leaves too little for the next queue renewal.
          if (this.clock.now().getTime() - reservedAt > this.options.leaseMs / 3) this.renewInBackground([record]);
          this.wake();
        } else {
          // Stopped meanwhile: due again at once, for whichever relay runs next.
          this.store.releaseLease([record]).catch((err: unknown) => this.observer.crashed?.(err));
        }
      },
      release: () => {
        if (!open) return;
        open = false;
        this.reserved--;
      },
    };
  }

  /** Finishes the batch in flight, claims nothing more, gives back what was handed over and not tried, and resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    await Promise.all([this.running, this.purge.stop()]);
    this.running = null;
    if (this.queueRenewal) clearInterval(this.queueRenewal);
    this.queueRenewal = null;
    await Promise.all(this.renewals);
    const left = this.handed.splice(0);
    if (left.length > 0) await this.store.releaseLease(left).catch((err: unknown) => this.observer.crashed?.(err));
  }

  /** Whether delivery is held back by an open circuit (the platform taken for down). */
  get circuitOpen(): boolean {
    return this.breaker !== null;
  }

  /** One round: events handed over, or else claimed, delivered; returns how many it took. Exposed for tests. */
  async deliverBatch(): Promise<number> {
    if (this.handed.length > 0 && this.breaker) {
      // Taken for down since they were handed over: due again at once, for the probe and the claims.
      const back = this.handed.splice(0);
      try {
        await Promise.all(this.renewals);
        await this.store.releaseLease(back);
      } catch (err) {
        // Their leases run out instead.
        this.observer.crashed?.(err);
      }
    }
    if (this.handed.length > 0 && !this.claimNext && !this.breaker) {
      this.claimNext = true;
      return this.deliverHeld(this.handed.splice(0, this.options.batchSize), false);
    }
    this.claimNext = false;
    // Open: one record, and only when its probe is due.
    const probe = this.breaker !== null;
    if (this.breaker && this.clock.now().getTime() < this.breaker.nextProbeAt) return 0;
    const records = await this.store.claim(probe ? 1 : this.options.batchSize, this.options.leaseMs);
    if (records.length === 0) {
      // Nothing due to probe with (the backlog in its backoff, or leased): look again at the next poll.
      if (this.breaker) this.breaker.nextProbeAt = this.clock.now().getTime() + this.options.pollMs;
      return 0;
    }
    return this.deliverHeld(records, probe);
  }

  /** Delivers records this relay holds (claimed, or handed over leased), their leases renewed meanwhile. */
  private async deliverHeld(records: OutboxRecord[], probe: boolean): Promise<number> {
    // A batch can take longer than its lease (16 deliveries at a time, each up to the platform's
    // timeout): the records it still holds keep their lease while it runs, failed ones excepted
    // (their backoff is theirs). Renewals run one at a time; a failed one is tried at the next tick.
    const failed = new Set<string>();
    let renewing: Promise<void> | null = null;
    const renew = setInterval(() => {
      renewing ??= this.store
        .renewLease(records.filter((r) => !failed.has(r.eventId)), this.options.leaseMs)
        .catch((err: unknown) => this.observer.crashed?.(err))
        .finally(() => (renewing = null));
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    // A renewal sent before a record failed must land before its failure does, or it would replace
    // the record's backoff with a lease.
    // The same for the renewals of records while they waited in `handed`.
    const settled = async () => {
      await Promise.all([renewing, ...this.renewals]);
    };
    try {
      return await this.deliverClaimed(records, failed, settled, probe);
    } finally {
      clearInterval(renew);
      await renewing;
    }
  }

  private async deliverClaimed(records: OutboxRecord[], failed: Set<string>, settled: () => Promise<void>, probe: boolean): Promise<number> {
    const delivered: OutboxRecord[] = [];
    let next = 0;
    const worker = async () => {
      // Once the circuit opens mid-batch, the records not tried yet are given back below.
      while (next < records.length && !(this.breaker && records.length > 1)) {
        const record = records[next++]!;
        try {
          await this.publisher.publish(record);
          delivered.push(record);
          this.accepted();
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          const delay = retryDelayMs(record.attempts, this.options.backoff);
          failed.add(record.eventId);
          this.refused(probe, isPlatformDown(err));
          try {
            await settled();
            await this.store.markFailed(record.eventId, delay, reason.slice(0, 1000));
          } catch (markError) {
            // Its lease runs out and it is tried again; the batch's other records go on.
            this.observer.crashed?.(markError);
          }
          this.observer.failed?.(record, reason, delay);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, records.length) }, worker));
    // Not tried because the circuit opened: due again at once, for the probe and for whichever relay
    // finds the platform answering first, instead of waiting out a lease nobody is using (30 s after
    // a JetStream leader's failover, measured). Kept out of the renewals before they are released.
    const untried = records.slice(next);
    if (untried.length > 0) {
      for (const r of untried) failed.add(r.eventId);
      try {
        await settled();
        await this.store.releaseLease(untried);
      } catch (err) {
        // Their leases run out as before.
        this.observer.crashed?.(err);
      }
    }
    if (delivered.length > 0) {
      await this.store.markDelivered(delivered.map((r) => r.eventId));
      const now = this.clock.now().getTime();
      for (const r of delivered) this.observer.delivered?.(r, now - r.createdAt.getTime());
    }
    return records.length;
  }

  private accepted(): void {
    this.failuresInRow = 0;
    if (!this.breaker) return;
    this.breaker = null;
    this.observer.circuit?.(false);
  }

  /**
   * A failed delivery. Only a platform that does not answer, or answers 5xx, counts toward the
   * circuit: one record the platform refuses (a 4xx) is that record's problem, retried on its own.
   * While open, only a probe's failure pushes the next probe back.
   */
  private refused(probe: boolean, platformDown: boolean): void {
    if (!platformDown) return;
    this.failuresInRow++;
    const now = this.clock.now().getTime();
    if (this.breaker) {
      if (!probe) return;
      this.breaker.probesFailed++;
      this.breaker.nextProbeAt = now + retryDelayMs(this.breaker.probesFailed + 1, this.probeBackoff());
    } else if (this.failuresInRow >= this.options.openAfterFailures) {
      this.breaker = { nextProbeAt: now + retryDelayMs(1, this.probeBackoff()), probesFailed: 0 };
      this.observer.circuit?.(true);
    }
  }

  private probeBackoff(): BackoffPolicy {
    return { ...this.options.backoff, capMs: Math.min(this.options.backoff.capMs, this.options.probeMaxMs) };
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let claimed = 0;
      this.woken = false;
      try {
        claimed = await this.deliverBatch();
      } catch (err) {
        // The database is unreachable or the like: keep going, the poll will retry.
        this.observer.crashed?.(err);
      }
      if (this.stopping) break;
      if (this.breaker) {
        // New records wake nobody while the platform is down: sleep to the next probe.
        await this.sleep(Math.max(10, this.breaker.nextProbeAt - this.clock.now().getTime()));
        continue;
      }
      if (claimed === this.options.batchSize || this.woken || this.handed.length > 0) continue;
      await this.sleep(this.options.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeUp = null;
        resolve();
      }
      this.wakeUp = done;
    });
  }
}

/** A delivery error that says the platform is down (no answer, a timeout, a 5xx), not that it refused this one record (a 4xx). */
function isPlatformDown(err: unknown): boolean {
  const status = /\bHTTP (\d{3})\b/.exec(err instanceof Error ? err.message : String(err))?.[1];
  return status === undefined || Number(status) >= 500 || status === '408' || status === '429';
}
