import type { Limits, RateLimit } from '@shop/adapters-http';
import path from 'node:path';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly dataPlatformUrl: string | null;
  readonly authSecret: string | null;
  readonly logLevel: string;
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  /** Rate limits and load shedding (0 turns one off). */
  readonly limits: Limits;
  readonly trustProxy: boolean;
  readonly acquireTimeoutMs: number;
  /** Group writes of orders in flight at once (ADR 0006); orders arriving meanwhile share the next. */
  readonly orderWritesInFlight: number;
  /** Best sellers: how often the sales rollup folds in new orders, and how long an answer is reused. */
  readonly bestSellers: { readonly refreshMs: number; readonly cacheMs: number };
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

/** Reads the environment once, at start, and refuses to run on a value it does not understand. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LEVELS.includes(logLevel)) throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(', ')}`);
  const databaseUrl = text(env, 'DATABASE_URL');
  if (env.NODE_ENV === 'production' && text(env, 'AUTH_SECRET') === null) {
    // A generated secret would sign tokens no other instance accepts, and lives on one disk.
    throw new Error('AUTH_SECRET must be set when NODE_ENV=production');
  }
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error('DATABASE_URL must be a postgres:// connection string');
  }
  const timeoutMs = integer(env, 'DATA_PLATFORM_TIMEOUT_MS', 5_000, 100, 60_000);
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    databaseUrl,
    dataDir: path.resolve(env.DATA_DIR || './.data'),
    dataPlatformUrl: text(env, 'DATA_PLATFORM_URL'),
    authSecret: text(env, 'AUTH_SECRET'),
    logLevel,
    poolSize: integer(env, 'DATABASE_POOL_SIZE', 16, 1, 500),
    statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5_000, 0, 3_600_000),
    limits: {
      // Generous per address: a flash sale's buyers often share one carrier NAT.
      perIp: rate(env, 'RATE_LIMIT_IP_PER_SEC', 1_000, 'RATE_LIMIT_IP_BURST', 5_000),
      perUser: rate(env, 'RATE_LIMIT_USER_PER_SEC', 20, 'RATE_LIMIT_USER_BURST', 100),
      maxInFlight: integer(env, 'MAX_IN_FLIGHT_REQUESTS', 4_096, 0, 1_000_000) || null,
    },
    trustProxy: (env.TRUST_PROXY ?? '') === 'true',
    acquireTimeoutMs: integer(env, 'DATABASE_ACQUIRE_TIMEOUT_MS', 2_000, 0, 3_600_000),
    orderWritesInFlight: integer(env, 'ORDER_WRITES_IN_FLIGHT', 2, 1, 500),
    bestSellers: {
      refreshMs: integer(env, 'TOP_SELLERS_REFRESH_MS', 2_000, 10, 3_600_000),
      cacheMs: integer(env, 'TOP_SELLERS_CACHE_MS', 1_000, 0, 3_600_000),
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
