import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect, inject, test } from 'vitest';
import { startApiProcess } from '../../../test/support/processes.ts';

test('started before its database exists, the service says why, retries, and comes up when the database does', async () => {
  const admin = inject('adminDatabaseUrl');
  const name = `t_late_${randomBytes(5).toString('hex')}`;
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const sql = async (text: string) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };

  // The database appears a little after the service starts.
  const appears = new Promise<void>((resolve, reject) => setTimeout(() => sql(`CREATE DATABASE ${name}`).then(resolve, reject), 1_500));
  const api = await startApiProcess(url.toString(), { OUTBOX_RELAY: 'off' });
  try {
    await appears;
    const retries = api.output
      .map((line) => {
        try {
          return JSON.parse(line) as { msg?: string; code?: string };
        } catch {
          return {};
        }
      })
      .filter((e) => e.msg === 'the database is unreachable at start; retrying');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]!.code).toBe('3D000'); // invalid_catalog_name: the database does not exist yet
    const ready = await fetch(`${api.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect((await fetch(`${api.url}/products`)).status).toBe(200); // migrated and serving
  } finally {
    expect(await api.stop()).toBe(0);
    await sql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
});
