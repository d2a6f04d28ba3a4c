import { createHash } from 'node:crypto';
import { DomainError } from '@shop/domain';
import type { Transaction } from './ports/index.ts';

export interface IdempotencyKey {
  readonly userId: number;
  readonly key: string;
}

/** What makes two requests "the same body": the operation and its canonical input. */
export function fingerprint(operation: string, input: unknown): string {
  return createHash('sha256').update(JSON.stringify([operation, input])).digest('base64url');
}

/**
 * Runs `work` at most once per (user, key), inside the caller's transaction.
 *
 * The key is claimed with a transaction-scoped lock rather than an "in progress" row, so a crash
 * or a failed request releases it by itself and leaves nothing behind: only a completed request
 * stores its result, in the same commit as its effects. A concurrent duplicate finds the key
 * claimed and gets IDEMPOTENCY_KEY_IN_USE; a later one replays the stored result.
 */
export async function once<T>(
  tx: Transaction,
  idem: IdempotencyKey | undefined,
  print: string,
  codec: { store(result: T): unknown; replay(stored: unknown): T },
  work: () => Promise<T>,
): Promise<T> {
  if (!idem) return work();
  if (!(await tx.idempotency.tryClaim(idem.userId, idem.key))) throw keyInUse();
  const prior = await tx.idempotency.find(idem.userId, idem.key);
  if (prior) return codec.replay(storedResultFor(prior, print));
  const result = await work();
  await tx.idempotency.save(idem.userId, idem.key, print, codec.store(result));
  return result;
}

/** The result a completed request stored under its key, if `print` is the same request; else IDEMPOTENCY_KEY_REUSED. */
export function storedResultFor(completed: { fingerprint: string; result: unknown }, print: string): unknown {
  if (completed.fingerprint !== print) {
    throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request');
  }
  return completed.result;
}

/** Another request with the same key is still being processed. */
export const keyInUse = (): DomainError =>
  new DomainError('IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still being processed');
