/** One batch of a purge pass. */
export interface PurgeBatch {
  /** Rows this batch deleted. */
  readonly deleted: number;
  /** Nothing older than the cutoff is left: the pass is over. */
  readonly done: boolean;
  /** Where the next batch of the same pass starts: opaque to the caller, null = from the beginning. */
  readonly resume: string | null;
}

/**
 * A table whose rows outlive their retention and are deleted a batch at a time: each batch is one
 * short statement in its own transaction, so none comes near the statement timeout and the pool
 * lends a purge one connection at a time.
 */
export interface Purgeable {
  /** Deletes up to `limit` rows older than `before`, continuing from the previous batch's `resume`. */
  purgeBatch(before: Date, limit: number, resume: string | null): Promise<PurgeBatch>;
  /** About how many rows older than `before` are left, cheap at any size (the planner's estimate). */
  estimateExpired(before: Date): Promise<number>;
}
