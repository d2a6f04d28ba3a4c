import type { Clock } from '../ports/clock.ts';
import type { Purgeable } from '../ports/purge.ts';
import { retryDelayMs, type BackoffPolicy } from '../relay/backoff.ts';

/** How purges delete and when they run again: one policy for every purge of the service. */
export interface PurgePolicy {
  /** Rows per statement. */
  readonly batchSize: number;
  /** A pass starts no new batch after this long, and the rest waits for the next pass. */
  readonly passBudgetMs: number;
  /** After a pass that left nothing behind. */
  readonly intervalMs: number;
  /** After a failed pass: the n-th failure in a row waits retryDelayMs(n, retry). */
  readonly retry: BackoffPolicy;
}

export const DEFAULT_PURGE_POLICY: PurgePolicy = {
  batchSize: 5_000,
  passBudgetMs: 2_000,
  intervalMs: 300_000,
  retry: { baseMs: 1_000, capMs: 60_000 },
};

/**
 * `done`: nothing past retention was left; `more`: the budget ran out first; `failed`: a batch
 * failed (the batches before it stay deleted).
 */
export type PurgeOutcome = 'done' | 'more' | 'failed';

export interface PurgePass {
  readonly outcome: PurgeOutcome;
  readonly deleted: number;
  readonly batches: number;
  readonly ms: number;
  /** Rows past retention still left: 0 after `done`, else an estimate; null when unknown (failed). */
  readonly backlog: number | null;
  readonly error?: unknown;
  /** When the next pass starts, from the end of this one. */
  readonly nextInMs: number;
}

export interface PurgeObserver {
  pass?(name: string, pass: PurgePass): void;
}

/**
 * The schedule, in one place: a pass that cleared everything waits the interval; one that ran out
 * of budget goes on soon, after twice its budget, so a backlog is worked off at a third of one
 * connection at most; a failed one is retried with backoff, sooner than the interval.
 */
export function nextPurgeInMs(
  outcome: PurgeOutcome,
  failuresInRow: number,
  policy: PurgePolicy,
  random: () => number = Math.random,
): number {
  switch (outcome) {
    case 'done':
      return policy.intervalMs;
    case 'more':
      return Math.min(policy.intervalMs, 2 * policy.passBudgetMs);
    case 'failed':
      return Math.min(policy.intervalMs, retryDelayMs(failuresInRow, policy.retry, random));
  }
}

/**
 * Deletes what outlived its retention in `target`, in bounded passes of batches, and schedules its
 * own next pass by `nextPurgeInMs`. One pass at a time; `stop()` ends the pass after its batch.
 */
export class PurgeJob {
  readonly name: string;
  private readonly target: Purgeable;
  private readonly clock: Clock;
  private readonly observer: PurgeObserver;
  private readonly retentionMs: number;
  readonly policy: PurgePolicy;
  private failuresInRow = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private started = false;
  private running: Promise<PurgePass> | null = null;
  private stopping = false;
  /** End of the last pass that did not fail (ran out of budget or cleared everything); null before. */
  lastSuccessAt: Date | null = null;
  /** When the next pass is due (clock time), or null when not scheduled. */
  nextAt: Date | null = null;

  constructor(
    deps: { name: string; target: Purgeable; clock: Clock; observer?: PurgeObserver },
    options: { retentionMs: number; policy?: Partial<PurgePolicy> },
  ) {
    this.name = deps.name;
    this.target = deps.target;
    this.clock = deps.clock;
    this.observer = deps.observer ?? {};
    this.retentionMs = options.retentionMs;
    this.policy = { ...DEFAULT_PURGE_POLICY, ...options.policy };
  }

  /** Runs passes on their own timer, the first after `firstInMs`. */
  start(firstInMs = 2 * this.policy.passBudgetMs): void {
    this.stopping = false;
    this.started = true;
    this.schedule(firstInMs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextAt = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass now (or the one in flight); the schedule follows from its outcome. Never rejects. */
  runOnce(): Promise<PurgePass> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  /** Sets `nextAt`; and, once started, the timer that runs the pass. */
  private schedule(inMs: number): void {
    if (this.stopping) return;
    this.nextAt = new Date(this.clock.now().getTime() + inMs);
    if (!this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runOnce();
    }, inMs);
    this.timer.unref?.();
  }

  private async pass(): Promise<PurgePass> {
    const started = this.clock.now().getTime();
    const before = new Date(started - this.retentionMs);
    let [deleted, batches, resume, outcome] = [0, 0, null as string | null, 'more' as PurgeOutcome];
    let error: unknown;
    try {
      while (!this.stopping) {
        const batch = await this.target.purgeBatch(before, this.policy.batchSize, resume);
        batches++;
        deleted += batch.deleted;
        resume = batch.resume;
        if (batch.done) {
          outcome = 'done';
          break;
        }
        if (this.clock.now().getTime() - started >= this.policy.passBudgetMs) break;
      }
    } catch (err) {
      outcome = 'failed';
      error = err;
    }
    let backlog: number | null = null;
    if (outcome === 'done') backlog = 0;
    else if (outcome === 'more' && !this.stopping) backlog = await this.target.estimateExpired(before).catch(() => null);
    this.failuresInRow = outcome === 'failed' ? this.failuresInRow + 1 : 0;
    const now = this.clock.now();
    if (outcome !== 'failed') this.lastSuccessAt = now;
    const nextInMs = nextPurgeInMs(outcome, this.failuresInRow, this.policy);
    const result: PurgePass = { outcome, deleted, batches, ms: now.getTime() - started, backlog, nextInMs, ...(error === undefined ? {} : { error }) };
    this.schedule(nextInMs);
    this.observer.pass?.(this.name, result);
    return result;
  }
}
