import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { systemClock, uuidV7 } from '@shop/application';
import { buildApp } from '@shop/adapters-http';
import {
  migrate,
  openDatabase,
  ping,
  pgReadStore,
  PgUnitOfWork,
  purgeIdempotencyKeys,
  startEmbeddedPostgres,
  type Db,
  type EmbeddedDatabase,
} from '@shop/adapters-postgres';
import type { Config } from './config.ts';
import { loadAuthSecret } from './secret.ts';
import { seedDemo, type SeededDemo } from './seed.ts';

const IDEMPOTENCY_RETENTION_MS = 48 * 3600_000;

export interface Service {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly authSecret: Uint8Array;
  readonly secretGenerated: boolean;
  readonly embedded: boolean;
  readonly seeded: SeededDemo | null;
  close(): Promise<void>;
}

/** The composition root: every adapter is chosen and wired here, and only here. */
export async function startService(config: Config, log: Logger): Promise<Service> {
  let embedded: EmbeddedDatabase | null = null;
  let databaseUrl = config.databaseUrl;
  if (databaseUrl === null) {
    log.info({ dataDir: config.dataDir }, 'no DATABASE_URL: starting the embedded PostgreSQL');
    embedded = await startEmbeddedPostgres(config.dataDir, (line) => log.debug({ postgres: line }));
    databaseUrl = embedded.url;
  }
  let db: Db | null = null;
  try {
    db = openDatabase({ connectionString: databaseUrl, max: config.poolSize });
    const applied = await migrate(db.pool);
    if (applied.length > 0) log.info({ applied }, 'database migrations applied');

    const { secret, generated } = await loadAuthSecret(config.authSecret, config.dataDir);
    const deps = {
      uow: new PgUnitOfWork(db.kysely),
      reads: pgReadStore(db.kysely),
      clock: systemClock,
      ids: uuidV7,
      authSecret: secret,
      checkReady: () => ping(db!.kysely),
    };
    let seeded: SeededDemo | null = null;
    if (embedded && (await deps.reads.products(1, null)).items.length === 0) {
      seeded = await seedDemo(deps);
      log.info(seeded, 'seeded demo data into the new embedded database');
    }
    const app = await buildApp(deps, { logger: log });
    const address = await app.listen({ port: config.port, host: config.host });
    const url = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');
    const purge = setInterval(() => {
      purgeIdempotencyKeys(db!.kysely, IDEMPOTENCY_RETENTION_MS).catch((err) => log.warn({ err }, 'idempotency purge failed'));
    }, 3600_000);
    purge.unref();

    const openDb = db;
    return {
      app,
      url,
      authSecret: secret,
      secretGenerated: generated,
      embedded: embedded !== null,
      seeded,
      async close() {
        clearInterval(purge);
        await app.close();
        await openDb.close();
        await embedded?.stop();
      },
    };
  } catch (err) {
    await db?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
}
