import { expect } from 'vitest';
import { auditInvariants } from '@shop/adapters-postgres';
import type { TestDatabase } from './database.ts';

/** The service's global invariants (see auditInvariants), as a test expectation. */
export async function assertInvariants(tdb: TestDatabase, initialStock: Map<number, number> = new Map()): Promise<void> {
  expect(await auditInvariants(tdb.db.pool, initialStock), 'invariant violations').toEqual([]);
}

/** Counts replies by "status code" so a failed expectation shows the whole outcome. */
export function outcomes(replies: ReadonlyArray<{ status: number; body: any }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of replies) {
    const key = r.status < 300 ? String(r.status) : `${r.status} ${r.body?.code ?? '?'}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
