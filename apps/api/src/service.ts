import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { bestSellersQuery, OutboxRelay, systemClock, uuidV7 } from '@shop/application';
import { buildApp, createMetrics } from '@shop/adapters-http';
import { createPublisher } from '@shop/adapters-dataplatform';
import {
  migrate,
  openDatabase,
  pgCouponIssuance,
  pgSalesStats,
  refreshSalesRollup,
  pgOrderBook,
  pgOutboxStore,
  PgWakeChannel,
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
import { waitForDatabase } from './wait-for-database.ts';
import { seedDemo, type SeededDemo } from './seed.ts';

const IDEMPOTENCY_RETENTION_MS = 48 * 3600_000;

export interface Service {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly authSecret: Uint8Array;
  readonly secretGenerated: boolean;
  readonly embedded: boolean;
  readonly seeded: SeededDemo | null;
  /** Where events go when DATA_PLATFORM_URL is unset. */
  readonly localEventsFile: string | null;
  close(): Promise<void>;
}

/** The composition root: every adapter is chosen and wired here, and only here. */
export async function startService(config: Config, log: Logger): Promise<Service> {
  const cleanup: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const step of cleanup.reverse()) await step().catch((err) => log.error({ err }, 'shutdown step failed'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    let embedded: EmbeddedDatabase | null = null;
    if (databaseUrl === null) {
      log.info({ dataDir: config.dataDir }, 'no DATABASE_URL: starting the embedded PostgreSQL');
      const started = await startEmbeddedPostgres(config.dataDir, (line) => log.debug({ postgres: line }));
      embedded = started;
      cleanup.push(() => started.stop());
      databaseUrl = started.url;
    }
    const db: Db = openDatabase({
      connectionString: databaseUrl,
      max: config.poolSize,
      statementTimeoutMs: config.statementTimeoutMs,
      acquireTimeoutMs: config.acquireTimeoutMs,
    });
    cleanup.push(() => db.close());
    await waitForDatabase(() => ping(db.kysely), log);
    const applied = await migrate(db.pool);
    if (applied.length > 0) log.info({ applied }, 'database migrations applied');

    const { secret, generated } = await loadAuthSecret(config.authSecret, config.dataDir);
    const outbox = pgOutboxStore(db.kysely);
    const metrics = createMetrics({
      outboxStats: () => outbox.stats(),
      pool: () => ({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount }),
    });
    const publisher = createPublisher(config.dataPlatformUrl, {
      dataDir: config.dataDir,
      timeoutMs: config.relay.timeoutMs,
      connections: 16,
      onLocalEvent: (r) => log.info({ eventId: r.eventId, type: r.type }, 'event written to the local sink'),
    });
    cleanup.push(() => publisher.close());
    const relay = new OutboxRelay(
      {
        store: outbox,
        publisher,
        clock: systemClock,
        observer: {
          ...metrics.relayObserver,
          failed(record, error, retryInMs) {
            metrics.relayObserver.failed?.(record, error, retryInMs);
            log.warn({ eventId: record.eventId, attempts: record.attempts, error, retryInMs }, 'event delivery failed');
          },
          crashed(err) {
            metrics.relayObserver.crashed?.(err);
            log.error({ err }, 'outbox relay round failed');
          },
        },
      },
      {
        pollMs: config.relay.pollMs,
        leaseMs: config.relay.leaseMs,
        backoff: { baseMs: config.relay.retryBaseMs, capMs: config.relay.retryMaxMs },
        retentionMs: config.relay.retentionDays * 86_400_000,
      },
    );
    const wake = new PgWakeChannel(db.pool, databaseUrl);
    cleanup.push(() => wake.close());
    const wakeRelay = () => {
      relay.wake();
      wake.announce();
    };

    const deps = {
      uow: new PgUnitOfWork(db.kysely),
      book: pgOrderBook(db.kysely, { writesInFlight: config.orderWritesInFlight }),
      reads: pgReadStore(db.kysely),
      clock: systemClock,
      ids: uuidV7,
      authSecret: secret,
      checkReady: () => ping(db.kysely),
      outbox,
      wakeRelay,
      events: { recorded: wakeRelay },
      metrics,
      issuance: pgCouponIssuance(db.kysely),
      bestSellers: bestSellersQuery({ sales: pgSalesStats(db.kysely), clock: systemClock }, config.bestSellers.cacheMs),
    };
    let seeded: SeededDemo | null = null;
    if (embedded && (await deps.reads.products(1, null)).items.length === 0) {
      seeded = await seedDemo(deps);
      log.info(seeded, 'seeded demo data into the new embedded database');
    }

    if (config.relay.enabled) {
      await wake.listen(() => relay.wake());
      relay.start();
      cleanup.push(() => relay.stop());
    }
    let rolling = false;
    const rollup = setInterval(() => {
      if (rolling) return;
      rolling = true;
      refreshSalesRollup(db.kysely)
        .catch((err) => log.warn({ err }, 'sales rollup failed'))
        .finally(() => (rolling = false));
    }, config.bestSellers.refreshMs);
    cleanup.push(async () => clearInterval(rollup));
    const purge = setInterval(() => {
      purgeIdempotencyKeys(db.kysely, IDEMPOTENCY_RETENTION_MS).catch((err) => log.warn({ err }, 'idempotency purge failed'));
    }, 3600_000);
    purge.unref();
    cleanup.push(async () => clearInterval(purge));

    const app = await buildApp(deps, { logger: log, limits: config.limits, trustProxy: config.trustProxy });
    // Closed first: no new requests, in-flight ones finish; then the relay's batch; then the rest.
    cleanup.push(() => app.close());
    const address = await app.listen({ port: config.port, host: config.host });
    const url = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');

    return {
      app,
      url,
      authSecret: secret,
      secretGenerated: generated,
      embedded: embedded !== null,
      seeded,
      localEventsFile: 'file' in publisher ? (publisher.file as string) : null,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
