import { DEFAULT_TIMEOUTS, type Limits, type RateLimit } from '@shop/adapters-http';
import path from 'node:path';
import { DEFAULT_CANCEL_DAYS } from '@shop/domain';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly dataPlatformUrl: string | null;
  /** Replicas of the JetStream stream the service creates (NATS_STREAM_REPLICAS): 3 in a cluster. */
  readonly natsStreamReplicas: number;
  readonly authSecret: string | null;
  /** Tokens of an identity provider, verified against its JWKS, instead of HS256; null = HS256 with AUTH_SECRET. */
  readonly jwks: JwksConfig | null;
  readonly logLevel: string;
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  /** Streaming replicas for the reads that may be a moment old (DATABASE_READ_URL, DATABASE_READ_MAX_LAG_MS). */
  readonly readReplicas: { readonly urls: readonly string[]; readonly maxLagMs: number };
  /** Rate limits and load shedding (0 turns one off). */
  readonly limits: Limits;
  /** Redis shared by all instances for the rate limits; null = limits kept per process. */
  readonly redisUrl: string | null;
  /** Prefix of this deployment's keys in that Redis. */
  readonly redisKeyPrefix: string;
  /**
   * How long a client may take over its request head (HTTP_HEADERS_TIMEOUT_MS) and its whole
   * request (HTTP_REQUEST_TIMEOUT_MS), and keep an idle connection open (HTTP_KEEP_ALIVE_TIMEOUT_MS).
   */
  readonly http: { readonly headersTimeoutMs: number; readonly requestTimeoutMs: number; readonly keepAliveTimeoutMs: number };
  /** Open connections one client address may have at once (MAX_CONNECTIONS_PER_ADDRESS); 0 = no limit. Trusted proxies are exempt. */
  readonly maxConnectionsPerAddress: number;
  /** Proxies whose X-Forwarded-For is believed: a hop count, or their addresses; false = none. */
  readonly trustProxy: false | number | readonly string[];
  /** A second listener serving only /metrics, without a token; null = none. */
  readonly metricsPort: number | null;
  /**
   * Where that listener binds: loopback unless METRICS_HOST says otherwise, whatever HOST is, since
   * it answers without a token (a container's HOST=0.0.0.0 would open it to every interface).
   */
  readonly metricsHost: string;
  readonly acquireTimeoutMs: number;
  /** BENCH_FLOOR_ROUTE=1: the benchmark's do-nothing route, POST /bench/floor (never in production). */
  readonly benchFloorRoute: boolean;
  /** Group writes of orders in flight at once (ADR 0006); orders arriving meanwhile share the next. */
  readonly orderWritesInFlight: number;
  /** How long an order, refund or cancel may wait for its group write before it is answered 503 unsent (0: no limit). */
  readonly orderQueueDeadlineMs: number;
  /** Best sellers: how often the sales rollup folds in new orders, and how long an answer is reused. */
  readonly bestSellers: { readonly refreshMs: number; readonly cacheMs: number };
  /** PRODUCT_CACHE_MS: the oldest a product served from memory may be (0: every product read goes to the database). */
  readonly productCacheMs: number;
  /** ORDER_CANCEL_DAYS: how many days after it was placed an order may be cancelled or refunded. */
  readonly cancelDays: number;
  /** Purges of what outlived its retention (idempotency keys, delivered outbox records). */
  readonly purge: { readonly passBudgetMs: number };
  readonly relay: {
    readonly enabled: boolean;
    readonly timeoutMs: number;
    readonly pollMs: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly retentionDays: number;
    /** How long a claimed record is kept from other relays; after a crash, redelivery waits this long. */
    readonly leaseMs: number;
  };
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function rate(env: NodeJS.ProcessEnv, perSecondName: string, perSecond: number, burstName: string, burst: number): RateLimit | null {
  const limit = { perSecond: integer(env, perSecondName, perSecond, 0, 1_000_000), burst: integer(env, burstName, burst, 1, 10_000_000) };
  return limit.perSecond === 0 ? null : limit;
}

const text = (env: NodeJS.ProcessEnv, name: string) => (env[name] === undefined || env[name] === '' ? null : env[name]!);

export interface JwksConfig {
  readonly url: string;
  /** The `iss` every token must carry (contract v1.2: required with AUTH_JWKS_URL). */
  readonly issuer: string;
  /** Required `aud`; null = not checked (AUTH_AUDIENCE=*, explicitly). */
  readonly audience: string | null;
  /** Claim name or dotted path whose value is "admin", or an array holding "admin", for an admin token. */
  readonly adminClaim: string;
  /** While the key set cannot be fetched, how long the last good one is still used (AUTH_JWKS_STALE_MAX_MS). */
  readonly staleMaxMs: number;
}

/** AUTH_JWKS_URL and the settings that only mean something with it. */
function jwks(env: NodeJS.ProcessEnv): JwksConfig | null {
  const url = text(env, 'AUTH_JWKS_URL');
  if (url === null) {
    const stray = ['AUTH_ISSUER', 'AUTH_AUDIENCE', 'AUTH_ADMIN_CLAIM', 'AUTH_JWKS_STALE_MAX_MS', 'AUTH_JWKS_ALLOW_HTTP'].filter((name) => text(env, name) !== null);
    if (stray.length > 0) throw new Error(`${stray.join(', ')} only apply with AUTH_JWKS_URL, which is unset`);
    return null;
  }
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    /* refused below */
  }
  if (!parsed || !['https:', 'http:'].includes(parsed.protocol)) throw new Error(`AUTH_JWKS_URL must be an https:// URL, got "${url}"`);
  // Keys fetched in clear text can be swapped on the way: only over https, but for a provider on
  // this machine, or where a deployment says so explicitly.
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname);
  if (parsed.protocol === 'http:' && !loopback && env.AUTH_JWKS_ALLOW_HTTP !== 'true') {
    throw new Error('AUTH_JWKS_URL must be https:// (http:// only on loopback, or with AUTH_JWKS_ALLOW_HTTP=true)');
  }
  const issuer = text(env, 'AUTH_ISSUER');
  // Any issuer's token signed by a key of the set would otherwise pass: an identity provider often
  // signs for several tenants or realms with one set.
  if (issuer === null) throw new Error('AUTH_ISSUER must be set with AUTH_JWKS_URL: only tokens whose iss equals it are accepted');
  // The same for audiences: a token the provider issued for another service of the same realm.
  const audience = text(env, 'AUTH_AUDIENCE');
  if (audience === null) throw new Error('AUTH_AUDIENCE must be set with AUTH_JWKS_URL (AUTH_AUDIENCE=* accepts any audience, explicitly)');
  return {
    url,
    issuer,
    audience: audience === '*' ? null : audience,
    adminClaim: text(env, 'AUTH_ADMIN_CLAIM') ?? 'role',
    staleMaxMs: integer(env, 'AUTH_JWKS_STALE_MAX_MS', 21_600_000, 0, 604_800_000),
  };
}

const ADDRESS_OR_CIDR = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:.]*:[0-9a-f:.]*)(\/\d{1,3})?$/i;

/**
 * TRUST_PROXY: how many proxy hops in front of the service to believe (1 behind one load balancer:
 * the client address is the right-most X-Forwarded-For entry, the one that proxy appended), or a
 * comma-separated list of the proxies' addresses or CIDRs (also `loopback`, `linklocal`,
 * `uniquelocal`). `true` is refused: it believes the left-most entry, which the client writes.
 */
function trustProxy(env: NodeJS.ProcessEnv): false | number | readonly string[] {
  const raw = (env.TRUST_PROXY ?? '').trim();
  if (raw === '' || raw === 'false' || raw === '0') return false;
  if (/^[0-9]+$/.test(raw)) return integer(env, 'TRUST_PROXY', 0, 0, 100);
  const entries = raw.split(',').map((e) => e.trim());
  if (raw !== 'true' && entries.every((e) => ['loopback', 'linklocal', 'uniquelocal'].includes(e) || ADDRESS_OR_CIDR.test(e))) return entries;
  throw new Error(
    `TRUST_PROXY must be a hop count (1 behind one load balancer) or a comma-separated list of proxy addresses or CIDRs, got "${raw}"` +
      (raw === 'true' ? ': true would believe the X-Forwarded-For a client writes itself' : ''),
  );
}

/** DATABASE_READ_URL: one or a comma list of postgres:// replicas; none when unset. */
function readReplicaUrls(env: NodeJS.ProcessEnv): string[] {
  const urls = (text(env, 'DATABASE_READ_URL') ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  for (const url of urls) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new Error('DATABASE_READ_URL must be one or a comma list of postgres:// connection strings');
  }
  return urls;
}

function redisUrl(env: NodeJS.ProcessEnv): string | null {
  const url = text(env, 'REDIS_URL');
  if (url !== null && !/^rediss?:\/\//.test(url)) throw new Error('REDIS_URL must be a redis:// or rediss:// URL');
  return url;
}

/**
 * The request timeouts. Short: an order's body is a few KiB, 64 KiB at most, and a client that
 * takes longer is holding a connection rather than sending a request. The head's is at most the
 * whole request's (Node refuses otherwise).
 */
function httpTimeouts(env: NodeJS.ProcessEnv): Config['http'] {
  const requestTimeoutMs = integer(env, 'HTTP_REQUEST_TIMEOUT_MS', DEFAULT_TIMEOUTS.requestMs, 100, 600_000);
  const headersTimeoutMs = integer(env, 'HTTP_HEADERS_TIMEOUT_MS', Math.min(DEFAULT_TIMEOUTS.headersMs, requestTimeoutMs), 100, 600_000);
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new Error(`HTTP_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not be longer than HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs}): the head is part of the request`);
  }
  return { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs: integer(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', DEFAULT_TIMEOUTS.keepAliveMs, 100, 3_600_000) };
}

/** Reads the environment once, at start, and refuses to run on a value it does not understand. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LEVELS.includes(logLevel)) throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(', ')}`);
  const databaseUrl = text(env, 'DATABASE_URL');
  const identityProvider = jwks(env);
  const authSecret = text(env, 'AUTH_SECRET');
  if (env.NODE_ENV === 'production' && authSecret === null && identityProvider === null) {
    // A generated secret would sign tokens no other instance accepts, and lives on one disk.
    throw new Error('AUTH_SECRET (or AUTH_JWKS_URL) must be set when NODE_ENV=production');
  }
  // With no AUTH_SECRET the service makes its own and prints tokens signed with it: such a demo
  // listens on loopback only unless HOST says otherwise.
  const generatesSecret = authSecret === null && identityProvider === null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error('DATABASE_URL must be a postgres:// connection string');
  }
  const timeoutMs = integer(env, 'DATA_PLATFORM_TIMEOUT_MS', 5_000, 100, 60_000);
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || (generatesSecret ? '127.0.0.1' : '0.0.0.0'),
    databaseUrl,
    dataDir: path.resolve(env.DATA_DIR || './.data'),
    dataPlatformUrl: text(env, 'DATA_PLATFORM_URL'),
    natsStreamReplicas: integer(env, 'NATS_STREAM_REPLICAS', 1, 1, 5),
    authSecret,
    jwks: identityProvider,
    logLevel,
    poolSize: integer(env, 'DATABASE_POOL_SIZE', 16, 1, 500),
    statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5_000, 0, 3_600_000),
    readReplicas: {
      urls: readReplicaUrls(env),
      maxLagMs: integer(env, 'DATABASE_READ_MAX_LAG_MS', 1_000, 0, 3_600_000),
    },
    limits: {
      // Generous per address: a flash sale's buyers often share one carrier NAT.
      perIp: rate(env, 'RATE_LIMIT_IP_PER_SEC', 1_000, 'RATE_LIMIT_IP_BURST', 5_000),
      perUser: rate(env, 'RATE_LIMIT_USER_PER_SEC', 20, 'RATE_LIMIT_USER_BURST', 100),
      maxInFlight: integer(env, 'MAX_IN_FLIGHT_REQUESTS', 4_096, 0, 1_000_000) || null,
    },
    redisUrl: redisUrl(env),
    redisKeyPrefix: env.REDIS_KEY_PREFIX || 'order-service:rate-limit:',
    http: httpTimeouts(env),
    // A browser opens at most 6 connections to a host, and buyers behind one carrier NAT share an
    // address: 256 leaves room for dozens of them at once, while one address opening thousands of
    // connections is an attack (or a load test, which sets its own).
    maxConnectionsPerAddress: integer(env, 'MAX_CONNECTIONS_PER_ADDRESS', 256, 0, 1_000_000),
    trustProxy: trustProxy(env),
    metricsPort: text(env, 'METRICS_PORT') === null ? null : integer(env, 'METRICS_PORT', 0, 0, 65535),
    metricsHost: text(env, 'METRICS_HOST') ?? '127.0.0.1',
    acquireTimeoutMs: integer(env, 'DATABASE_ACQUIRE_TIMEOUT_MS', 2_000, 0, 3_600_000),
    benchFloorRoute: env.BENCH_FLOOR_ROUTE === '1',
    orderWritesInFlight: integer(env, 'ORDER_WRITES_IN_FLIGHT', 2, 1, 500),
    orderQueueDeadlineMs: integer(env, 'ORDER_QUEUE_DEADLINE_MS', 5_000, 0, 600_000),
    cancelDays: integer(env, 'ORDER_CANCEL_DAYS', DEFAULT_CANCEL_DAYS, 0, 3650),
    bestSellers: {
      refreshMs: integer(env, 'TOP_SELLERS_REFRESH_MS', 2_000, 10, 3_600_000),
      cacheMs: integer(env, 'TOP_SELLERS_CACHE_MS', 1_000, 0, 3_600_000),
    },
    productCacheMs: integer(env, 'PRODUCT_CACHE_MS', 1_000, 0, 60_000),
    purge: {
      passBudgetMs: integer(env, 'PURGE_PASS_MS', 2_000, 10, 60_000),
    },
    relay: {
      enabled: (env.OUTBOX_RELAY ?? 'on') !== 'off',
      timeoutMs,
      pollMs: integer(env, 'OUTBOX_POLL_MS', 1_000, 10, 60_000),
      retryBaseMs: integer(env, 'OUTBOX_RETRY_BASE_MS', 500, 10, 60_000),
      retryMaxMs: integer(env, 'OUTBOX_RETRY_MAX_MS', 60_000, 10, 3_600_000),
      retentionDays: integer(env, 'OUTBOX_RETENTION_DAYS', 7, 1, 3650),
      // Longer than a delivery can take, so a live relay never loses its claim to another.
      leaseMs: integer(env, 'OUTBOX_LEASE_MS', Math.max(30_000, timeoutMs * 3), timeoutMs * 2, 3_600_000),
    },
  };
}
