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

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
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
