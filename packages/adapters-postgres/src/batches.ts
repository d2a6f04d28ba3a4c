import type { ClientGoneSignal } from '@shop/application';

/** Why a request left the queue without being sent. */
export class Abandoned extends Error {
  readonly reason: 'client gone' | 'deadline';
  constructor(reason: Abandoned['reason']) {
    super(`left the queue unsent: ${reason}`);
    this.reason = reason;
  }
}

/** What may take a queued request out before it is sent: its client's signal, and how long it may wait. */
export interface QueueLimits {
  readonly signal?: ClientGoneSignal | undefined;
  readonly deadlineMs?: number | undefined;
}

/** One request waiting in a batch; the batch's runner settles it. */
export interface Pending<T, R> {
  readonly item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

/**
 * Requests that share statements: while `inFlight` batches are out, arriving requests wait, and
 * the next batch takes up to `maxBatch` of them. Under light load a request goes out at once,
 * alone; under a burst, one statement serves many (order groups, ADR 0006; key looks, ADR 0010).
 */
export class Batches<T, R> {
  private readonly waiting: Array<Pending<T, R>> = [];
  private running = 0;
  private readonly inFlight: number;
  private readonly maxBatch: number;
  private readonly run: (batch: Array<Pending<T, R>>) => Promise<void>;

  /** `run` settles every request of its batch, and does not throw. */
  constructor(inFlight: number, maxBatch: number, run: (batch: Array<Pending<T, R>>) => Promise<void>) {
    this.inFlight = inFlight;
    this.maxBatch = maxBatch;
    this.run = run;
  }

  /**
   * Queues `item`. While it waits (never once its batch is out), an aborted `signal` or a passed
   * `deadlineMs` takes it out and rejects it with Abandoned: nothing of it was sent.
   */
  submit(item: T, limits: QueueLimits = {}): Promise<R> {
    const { signal, deadlineMs } = limits;
    if (signal?.aborted) return Promise.reject(new Abandoned('client gone'));
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (reason: Abandoned['reason']) => {
        const at = this.waiting.indexOf(pending);
        if (at < 0) return; // already sent: it is written, or answered, as any other
        this.waiting.splice(at, 1);
        settle();
        reject(new Abandoned(reason));
      };
      const onAbort = () => leave('client gone');
      const settle = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const pending: Pending<T, R> = {
        item,
        resolve: (r) => (settle(), resolve(r)),
        reject: (e) => (settle(), reject(e)),
      };
      this.waiting.push(pending);
      this.pump();
      if (this.waiting.includes(pending)) {
        signal?.addEventListener('abort', onAbort, { once: true });
        if (deadlineMs !== undefined) timer = setTimeout(() => leave('deadline'), deadlineMs);
      }
    });
  }

  private pump(): void {
    while (this.running < this.inFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}
