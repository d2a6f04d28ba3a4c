export { openDatabase, type Db, type PoolOptions } from './database.ts';
export { migrate } from './migrate.ts';
export { PgUnitOfWork } from './unit-of-work.ts';
export { pgReadStore } from './read-store.ts';
export { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.ts';
export { ping, purgeIdempotencyKeys } from './maintenance.ts';
export type { Database } from './schema.ts';
export { pgOutboxStore } from './outbox-store.ts';
export { PgWakeChannel } from './wake-channel.ts';
