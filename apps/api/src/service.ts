import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { bestSellersQuery, DEFAULT_RELAY_OPTIONS, IDEMPOTENCY_RETENTION_MS, OutboxRelay, PurgeJob, RecentOrderKeys, RetryLaterError, systemClock, uuidV7, type PurgeObserver } from '@shop/application';
import { buildApp, buildMetricsApp, createJwksAuthenticator, createMetrics, type Authenticator, type SharedLimitStore } from '@shop/adapters-http';
import { createPublisher } from '@shop/adapters-dataplatform';
import {
  migrate,
  analyzeOutgrownPartitions,
  ensurePartitions,
  openDatabase,
  pgCouponIssuance,
  pgSalesStatsWithReplicas,
  refreshSalesRollup,
  pgOrderBook,
  pgOutboxStore,
  PgWakeChannel,
  ping,
  pgReadStoreWithReplicas,
  ReadReplicas,
  PgUnitOfWork,
  pgIdempotencyKeyPurge,
  startEmbeddedPostgres,
  type Db,
  type EmbeddedDatabase,
} from '@shop/adapters-postgres';
import type { Config } from './config.ts';
import { loadAuthSecret } from './secret.ts';
import { connectRateLimitRedis } from './redis.ts';
import { waitForDatabase } from './wait-for-database.ts';
import { seedDemo, type SeededDemo } from './seed.ts';
import { withProductCache } from './product-cache.ts';

/**
 * Keyed orders this instance answered, kept so that a retry is answered without a read: ten
 * minutes covers a client's retries, far inside the 48 hours the database keeps a key. 10,000 of
 * them bound the memory whatever clients send: about 1 KiB an order of a few lines, 8 at the
 * contract's 100, so 10 to 80 MiB at most.
 */
const RECENT_ORDER_KEYS = { maxEntries: 10_000, keepMs: 10 * 60_000 };

const PARTITIONS_EVERY_MS = 3600_000;
const PARTITION_STATS_EVERY_MS = 5_000;
const LISTEN_BACKLOG = 4096;

export interface Service {
  readonly app: FastifyInstance;
  readonly url: string;
  /** The METRICS_PORT listener; null when METRICS_PORT is unset. */
  readonly metricsUrl: string | null;
  /** The HS256 secret; null when tokens come from an identity provider (AUTH_JWKS_URL). */
  readonly authSecret: Uint8Array | null;
  readonly secretGenerated: boolean;
  readonly embedded: boolean;
  /**
   * Resolves once the database answers and is migrated (and seeded, for a new embedded one); until
   * then the service already listens, answers /health/live, and answers 503 to what needs the
   * database. Rejects if the service is closed first or the start fails for another reason.
   */
  readonly ready: Promise<void>;
  /** Known once `ready` has resolved. */
  readonly seeded: SeededDemo | null;
  /** Where events go when DATA_PLATFORM_URL is unset. */
  readonly localEventsFile: string | null;
  close(): Promise<void>;
}

/** The composition root: every adapter is chosen and wired here, and only here. */
export async function startService(config: Config, log: Logger): Promise<Service> {
  const cleanup: Array<() => Promise<void>> = [];
  const closing = new AbortController();
  let starting: Promise<void> = Promise.resolve();
  const closeAll = async () => {
    closing.abort();
    await starting.catch(() => undefined);
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
    // The service listens before the database answers: until it does and is migrated,
    // what needs it is answered 503 with Retry-After, and /health/ready says 503.
    let databaseReady = false;
    /** Set when a newer release has upgraded the database past what this one may run on: every 503 says so. */
    let tooOldForDatabase: RetryLaterError | null = null;
    const notYet = () => tooOldForDatabase ?? new RetryLaterError('the database is not available yet; try again shortly');
    const untilReady = <T extends object>(target: T): T => gateUntil(target, () => databaseReady, notYet);

    // HS256 with AUTH_SECRET (or one generated for the demo), or an identity provider's JWKS.
    let secret: Uint8Array | null = null;
    let generated = false;
    let authenticate: Authenticator | undefined;
    if (config.jwks) {
      authenticate = createJwksAuthenticator(config.jwks);
      const { url, issuer, audience, adminClaim, staleMaxMs } = config.jwks;
      log.info({ jwks: url, issuer, audience: audience ?? '* (any)', adminClaim, staleMaxMs }, 'tokens are verified against the identity provider JWKS');
    } else {
      ({ secret, generated } = await loadAuthSecret(config.authSecret, config.dataDir));
    }
    // The relay, the purge of delivered events and the metrics' outbox figures on a small pool of
    // their own: a platform outage or a purge never takes the connections orders need.
    const relayDb: Db = openDatabase({
      connectionString: databaseUrl,
      max: 3,
      applicationName: 'order-service-relay',
      statementTimeoutMs: config.statementTimeoutMs,
      acquireTimeoutMs: config.acquireTimeoutMs,
    });
    cleanup.push(() => relayDb.close());
    const relayOutbox = pgOutboxStore(relayDb.kysely);
    const outbox = pgOutboxStore(db.kysely);
    // Set once the metrics exist: they count where each of its reads went.
    let replicas: ReadReplicas | null = null;
    const metrics = createMetrics({
      outboxStats: () => relayOutbox.stats(),
      pool: () => ({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount }),
      ...(config.readReplicas.urls.length > 0 ? { replicas: () => replicas?.states() ?? [] } : {}),
    });
    if (config.readReplicas.urls.length > 0) {
      const started = new ReadReplicas(db.kysely, {
        urls: config.readReplicas.urls,
        maxLagMs: config.readReplicas.maxLagMs,
        poolSize: config.poolSize,
        onRead: (on) => metrics.observeReplicaRead(on),
      });
      replicas = started;
      cleanup.push(() => started.close());
      // Not awaited: until a check finds a replica close enough, every read is on the primary.
      void started.start();
      log.info({ replicas: config.readReplicas.urls.length, maxLagMs: config.readReplicas.maxLagMs }, 'catalog reads go to read replicas within the lag');
    }
    const publisher = createPublisher(config.dataPlatformUrl, {
      dataDir: config.dataDir,
      timeoutMs: config.relay.timeoutMs,
      connections: 16,
      natsStreamReplicas: config.natsStreamReplicas,
      onLocalEvent: (r) => log.info({ eventId: r.eventId, type: r.type }, 'event written to the local sink'),
    });
    cleanup.push(() => publisher.close());
    const purgePolicy = { passBudgetMs: config.purge.passBudgetMs };
    const purgeObserver: PurgeObserver = {
      pass(name, pass) {
        metrics.purgeObserver.pass?.(name, pass);
        const { outcome, deleted, batches, ms, backlog, nextInMs } = pass;
        if (outcome === 'failed') log.warn({ err: pass.error, purge: name, deleted, retryInMs: nextInMs }, 'purge pass failed');
        else if (deleted > 0) log.info({ purge: name, outcome, deleted, batches, ms, backlog, nextInMs }, 'purge pass');
      },
    };
    const relay = new OutboxRelay(
      {
        store: relayOutbox,
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
          circuit(open) {
            metrics.relayObserver.circuit?.(open);
            if (open) log.warn('the data platform is taken for down: delivery paused, one probe at a time until it answers');
            else log.info('the data platform answers again: delivery resumed');
          },
        },
        purgeObserver,
      },
      {
        pollMs: config.relay.pollMs,
        leaseMs: config.relay.leaseMs,
        backoff: { baseMs: config.relay.retryBaseMs, capMs: config.relay.retryMaxMs },
        retentionMs: config.relay.retentionDays * 86_400_000,
        purge: { ...DEFAULT_RELAY_OPTIONS.purge, ...purgePolicy },
      },
    );
    const wake = new PgWakeChannel(db.pool, databaseUrl);
    cleanup.push(() => wake.close());
    const wakeRelay = () => {
      relay.wake();
      wake.announce();
    };

    const uow = new PgUnitOfWork(db.kysely);
    const catalog = withProductCache(
      pgReadStoreWithReplicas(db.kysely, replicas),
      pgOrderBook(db.kysely, { writesInFlight: config.orderWritesInFlight, queueDeadlineMs: config.orderQueueDeadlineMs || undefined }),
      config.productCacheMs,
    );
    const reads = catalog.reads;
    const bestSellers = bestSellersQuery({ sales: pgSalesStatsWithReplicas(db.kysely, replicas), clock: systemClock }, config.bestSellers.cacheMs);
    const deps = {
      uow: untilReady(uow),
      book: untilReady(catalog.book),
      reads: untilReady(reads),
      clock: systemClock,
      ids: uuidV7,
      authSecret: secret ?? undefined,
      authenticate,
      checkReady: () => (databaseReady ? ping(db.kysely) : Promise.reject(notYet())),
      deliveryDegraded: () => relay.circuitOpen,
      outbox: untilReady(outbox),
      wakeRelay,
      events: { recorded: wakeRelay, reserve: () => relay.reserve() },
      recentKeys: new RecentOrderKeys(systemClock, RECENT_ORDER_KEYS),
      productChanged: catalog.productChanged,
      metrics,
      issuance: untilReady(pgCouponIssuance(db.kysely)),
      bestSellers: (days: number, limit: number) => (databaseReady ? bestSellers(days, limit) : Promise.reject(notYet())),
      cancelDays: config.cancelDays,
    };
    let seeded: SeededDemo | null = null;
    /** In the background once listening: wait for the database, migrate, seed a new embedded one, start the relay. */
    const bringUp = async () => {
      for (;;) {
        await waitForDatabase(() => ping(db.kysely), log, { signal: closing.signal });
        try {
          const { applied, newer, tooOld } = await migrate(db.pool);
          if (applied.length > 0) log.info({ applied }, 'database migrations applied');
          if (tooOld) {
            tooOldForDatabase = new RetryLaterError(
              `this release (${tooOld.release}) is older than the database allows (${tooOld.oldestAllowed} or newer): replace this instance with a newer release`,
            );
            // Serving would answer 500s, and an old relay could break the delivery order: stay not
            // ready (503 to everything that needs the database) until replaced by a newer release.
            log.error(
              { release: tooOld.release, oldestAllowed: tooOld.oldestAllowed, newer },
              'this release is too old for the database (a newer release upgraded it): not ready; deploy a release at least as new as oldestAllowed',
            );
            await new Promise((resolve) => closing.signal.addEventListener('abort', resolve, { once: true }));
            throw new Error('closed while too old for the database');
          }
          if (newer.length > 0) {
            log.warn({ newer }, 'a newer release has upgraded this database; this one applied nothing and runs on its schema');
          }
          break;
        } catch (err) {
          // Still answering: the migrations themselves fail, and retrying will not help.
          if (await ping(db.kysely).then(() => true, () => false)) throw err;
          log.warn({ err }, 'the database went away while migrating; waiting for it again');
        }
      }
      if (embedded && (await reads.products(1, null)).items.length === 0) {
        seeded = await seedDemo({ uow, clock: systemClock });
        log.info(seeded, 'seeded demo data into the new embedded database');
      }
      if (config.relay.enabled && !closing.signal.aborted) {
        await wake.listen(() => relay.wake());
        relay.start();
      }
      if (!closing.signal.aborted) keyPurge.start();
      databaseReady = true;
    };

    if (config.relay.enabled) cleanup.push(() => relay.stop());
    let rolling = false;
    const rollup = setInterval(() => {
      if (rolling || !databaseReady) return;
      rolling = true;
      refreshSalesRollup(db.kysely)
        .catch((err) => log.warn({ err }, 'sales rollup failed'))
        .finally(() => (rolling = false));
    }, config.bestSellers.refreshMs);
    cleanup.push(async () => clearInterval(rollup));
    // The history tables' partitions ahead (migrate made them at start): hourly, every instance
    // alike (making one that exists is a no-op), so that a few failed hours still leave days.
    const partitions = setInterval(() => {
      if (!databaseReady) return;
      ensurePartitions(db.kysely)
        .then((made) => made > 0 && log.info({ made }, 'history partitions made ahead'))
        .catch((err) => log.error({ err }, 'making the history partitions ahead failed; orders fail once none is left for now'));
    }, PARTITIONS_EVERY_MS);
    partitions.unref();
    cleanup.push(async () => clearInterval(partitions));
    // A new day's or month's partition, planned while its statistics said empty, is scanned whole by
    // the plans kept from then until it is analyzed (analyzeOutgrownPartitions): every few seconds,
    // not whenever autovacuum gets to it. One at a time; a failure is the next round's to retry.
    let analyzing = false;
    const partitionStats = setInterval(() => {
      if (analyzing || !databaseReady) return;
      analyzing = true;
      analyzeOutgrownPartitions(db.kysely)
        .then(({ analyzed, skipped }) => {
          if (analyzed.length > 0) log.info({ analyzed }, 'young history partitions analyzed');
          // Held by another session (its ANALYZE, a detach) for a round is nothing; every round is a role that may not analyze them.
          if (skipped.length > 0) log.warn({ skipped }, 'young history partitions not analyzed; tried again in 5 s');
        })
        .catch((err) => log.warn({ err }, 'analyzing young history partitions failed'))
        .finally(() => (analyzing = false));
    }, PARTITION_STATS_EVERY_MS);
    partitionStats.unref();
    cleanup.push(async () => clearInterval(partitionStats));
    // Every instance purges (a batch that finds its rows already gone deletes nothing); started
    // once the database is ready, by bringUp.
    const keyPurge = new PurgeJob(
      { name: 'idempotency_keys', target: pgIdempotencyKeyPurge(db.kysely), clock: systemClock, observer: purgeObserver },
      { retentionMs: IDEMPOTENCY_RETENTION_MS, policy: purgePolicy },
    );
    cleanup.push(() => keyPurge.stop());

    // Rate limits shared by every instance through Redis when REDIS_URL is set.
    let sharedLimits: SharedLimitStore | null = null;
    if (config.redisUrl) {
      const redis = await connectRateLimitRedis(config.redisUrl, log);
      cleanup.push(() => redis.close());
      sharedLimits = { redis: redis.client, prefix: config.redisKeyPrefix };
    }
    let metricsUrl: string | null = null;
    if (config.metricsPort !== null) {
      const metricsApp = buildMetricsApp(metrics, log);
      cleanup.push(() => metricsApp.close());
      metricsUrl = listenUrl(await metricsApp.listen({ port: config.metricsPort, host: config.metricsHost }));
      log.info({ metricsUrl }, 'metrics listener (no token) on METRICS_PORT');
    }
    const app = await buildApp(deps, {
      logger: log,
      limits: config.limits,
      sharedLimits,
      trustProxy: config.trustProxy,
      headersTimeoutMs: config.http.headersTimeoutMs,
      requestTimeoutMs: config.http.requestTimeoutMs,
      keepAliveTimeoutMs: config.http.keepAliveTimeoutMs,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      benchFloorRoute: config.benchFloorRoute,
    });
    // Closed first: no new requests, in-flight ones finish; then the relay's batch; then the rest.
    cleanup.push(() => app.close());
    // A flash sale opens thousands of connections at once. Node's default backlog (511) overflows
    // then: the kernel drops handshakes, falls back to SYN cookies, and some clients get a reset
    // instead of an answer (seen in the 2,000-buyer coupon test). The kernel caps this at
    // net.core.somaxconn (4096 on current Linux).
    const address = await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
    const url = listenUrl(address);
    starting = bringUp();
    starting.catch(() => undefined); // the caller awaits `ready`; closing first rejects it quietly

    return {
      app,
      url,
      metricsUrl,
      authSecret: secret,
      secretGenerated: generated,
      embedded: embedded !== null,
      ready: starting,
      get seeded() {
        return seeded;
      },
      localEventsFile: 'file' in publisher ? (publisher.file as string) : null,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** A URL to reach a listener at, on this machine. */
const listenUrl = (address: string) => address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');

/**
 * `target` with every method refusing (a rejected promise of `error()`) while `isReady()` is false:
 * the database-backed stores handed to the routes before the database answers.
 */
function gateUntil<T extends object>(target: T, isReady: () => boolean, error: () => Error): T {
  const gated = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(obj, key) {
      const value: unknown = Reflect.get(obj, key, obj);
      if (typeof value !== 'function') return value;
      let wrapper = gated.get(key);
      if (!wrapper) {
        const method = value as (...args: unknown[]) => unknown;
        wrapper = (...args: unknown[]) => (isReady() ? method.apply(obj, args) : Promise.reject(error()));
        gated.set(key, wrapper);
      }
      return wrapper;
    },
  });
}
