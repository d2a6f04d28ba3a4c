import { describe, expect, test } from 'vitest';
import { createTestDatabase } from '../../../test/support/database.ts';
import { startApiProcess } from '../../../test/support/processes.ts';

describe('a start against a database whose migration history this code cannot vouch for', () => {
  test('stops, naming the migration that changed after it was applied, and serves nothing', async () => {
    const tdb = await createTestDatabase();
    try {
      await tdb.query(`UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE name = '0003_best_sellers.sql'`);
      const start = startApiProcess(tdb.url);
      await expect(start).rejects.toThrow(/exited with 1 before it was ready/);
      await expect(start).rejects.toThrow(/migration 0003_best_sellers\.sql was changed after this database applied it/);
    } finally {
      await tdb.drop();
    }
  });
});
