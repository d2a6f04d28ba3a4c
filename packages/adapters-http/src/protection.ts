import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Admission control: per-address and per-user rate limits through @fastify/rate-limit, and a cap
 * on requests in flight for shedding load (app.ts). With a Redis client the counters live in
 * Redis, so every API instance behind the load balancer draws from one limit; without one they
 * are kept in this process, and N instances allow up to N times the limit (docs/operations.md).
 */

export interface RateLimit {
  /** Sustained requests per second. */
  readonly perSecond: number;
  /** Requests allowed at once: the limit counts `burst` requests per window of burst / perSecond seconds. */
  readonly burst: number;
}

export interface Limits {
  /** Per client address (as the trusted proxy saw it, see TRUST_PROXY); null = none. */
  readonly perIp: RateLimit | null;
  /** Per authenticated user (admins are not limited); null = none. */
  readonly perUser: RateLimit | null;
  /** Requests being served at once before new ones are turned away with 503; null = no cap. */
  readonly maxInFlight: number | null;
}

/** Where the counters are shared between instances: an ioredis client, as @fastify/rate-limit expects. */
export interface SharedLimitStore {
  readonly redis: unknown;
  /** Prefix of the Redis keys, so deployments can share one Redis. */
  readonly prefix: string;
}

/** Raised when a client is over its rate; answered 429 with Retry-After. */
export class RateLimitedError extends Error {
  readonly retryAfterSeconds: number;
  constructor(detail: string, retryAfterSeconds: number) {
    super(detail);
    this.name = 'RateLimitedError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Takes one request from a client's allowance: 0 when allowed, else the seconds until its window resets. */
export type Limiter = (req: FastifyRequest) => Promise<number>;

/** The same for an authenticated user's allowance. */
export type UserLimiter = (req: FastifyRequest, userId: number) => Promise<number>;

export interface Limiters {
  readonly byAddress: Limiter | null;
  readonly byUser: UserLimiter | null;
}

/** A window that averages `perSecond` and lets `burst` through at once. */
export const windowMs = (limit: RateLimit): number => Math.max(1, Math.round((limit.burst * 1000) / limit.perSecond));

/** The address key: an IPv6 client counts by its /64, as it can pick any address inside it. */
export const addressKey = (req: FastifyRequest): string => `ip:${normalizeIP(req.ip)}`;

/**
 * Registers @fastify/rate-limit on `app` (no route hooks of its own: the caller decides where each
 * limit runs) and returns the two limiters. A store failure (Redis down) lets the request through
 * and is logged at most every 10 s: the limits protect the service, they must not take it down.
 */
export async function registerLimits(
  app: FastifyInstance,
  limits: Limits | undefined,
  shared: SharedLimitStore | null,
  log: FastifyBaseLogger,
): Promise<Limiters> {
  if (!limits?.perIp && !limits?.perUser) return { byAddress: null, byUser: null };
  const keys = new WeakMap<FastifyRequest, string>();
  const limitOf = (key: string): RateLimit => (key.startsWith('user:') ? limits.perUser! : limits.perIp!);
  await app.register(rateLimit, {
    global: false,
    keyGenerator: (req) => keys.get(req)!,
    max: (_req, key) => limitOf(key).burst,
    timeWindow: (_req, key) => windowMs(limitOf(key)),
    // Idle clients are forgotten first; only the in-process store uses it.
    cache: 200_000,
    ...(shared ? { redis: shared.redis, nameSpace: shared.prefix } : {}),
  });
  const check = app.createRateLimit();
  let warnedAt = 0;
  const take = async (req: FastifyRequest, key: string): Promise<number> => {
    keys.set(req, key);
    try {
      const result = await check(req);
      return !result.isAllowed && result.isExceeded ? Math.max(1, result.ttlInSeconds) : 0;
    } catch (err) {
      if (Date.now() - warnedAt > 10_000) {
        warnedAt = Date.now();
        log.warn({ err }, 'the rate-limit store does not answer; requests are let through unlimited meanwhile');
      }
      return 0;
    }
  };
  return {
    byAddress: limits.perIp ? (req) => take(req, addressKey(req)) : null,
    byUser: limits.perUser ? (req, userId) => take(req, `user:${userId}`) : null,
  };
}
