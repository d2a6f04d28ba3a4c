import pg from 'pg';

/**
 * The SQL that makes and watches a streaming replica (packages/local-clusters starts the
 * processes): a base backup through the low-level backup API, a replication slot, the replay
 * position. Each call opens a connection of its own: the server may be starting or stopping.
 */

/** One statement on a connection of its own, given up after 2 s without a connection. */
export async function queryServer<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

/**
 * A base backup of the running primary for a replica streaming from slot `slot` (created here):
 * pg_backup_start, then `copy` copies the data directory, then pg_backup_stop, whose backup label
 * (and tablespace map) the copy needs beside it.
 */
export async function baseBackup(primaryUrl: string, slot: string, copy: () => void): Promise<{ backupLabel: string; tablespaceMap: string | null }> {
  const c = new pg.Client({ connectionString: primaryUrl });
  await c.connect();
  try {
    await c.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    await c.query('SELECT pg_backup_start($1, true)', [`replica ${slot}`]);
    copy();
    const { rows } = await c.query<{ labelfile: string; spcmapfile: string | null }>('SELECT labelfile, spcmapfile FROM pg_backup_stop(true)');
    return { backupLabel: rows[0]!.labelfile, tablespaceMap: rows[0]!.spcmapfile };
  } finally {
    await c.end();
  }
}

/** The primary's current WAL position. */
export const currentWalLsn = async (primaryUrl: string) =>
  (await queryServer<{ lsn: string }>(primaryUrl, 'SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;

/** Whether the replica has replayed the WAL up to `lsn`. */
export const replayedPast = async (replicaUrl: string, lsn: string) =>
  (await queryServer<{ ok: boolean }>(replicaUrl, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]))[0]!.ok;

/** Stops (or resumes) replaying WAL on a replica: paused, it falls behind as the primary moves on. */
export const setReplayPaused = async (replicaUrl: string, paused: boolean) =>
  void (await queryServer(replicaUrl, paused ? 'SELECT pg_wal_replay_pause()' : 'SELECT pg_wal_replay_resume()'));
