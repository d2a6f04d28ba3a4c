/**
 * Admission control: token buckets for per-IP and per-user rate limits, and a cap on requests in
 * flight for shedding load. In-process, per API instance: behind a load balancer of N instances a
 * client's effective limit is up to N times the configured one (docs/operations.md).
 */

export interface RateLimit {
  /** Sustained requests per second. */
  readonly perSecond: number;
  /** Requests allowed at once after a quiet period. */
  readonly burst: number;
}

export interface Limits {
  /** Per client address (the proxy's X-Forwarded-For when TRUST_PROXY is set); null = none. */
  readonly perIp: RateLimit | null;
  /** Per authenticated user (admins are not limited); null = none. */
  readonly perUser: RateLimit | null;
  /** Requests being served at once before new ones are turned away with 503; null = no cap. */
  readonly maxInFlight: number | null;
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

/** One token bucket per key, refilled continuously; idle keys are forgotten. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly limit: RateLimit;
  private readonly maxKeys: number;

  constructor(limit: RateLimit, maxKeys = 200_000) {
    this.limit = limit;
    this.maxKeys = maxKeys;
  }

  /** Takes one token for `key`: 0 when allowed, else the seconds until one is available. */
  take(key: string, nowMs: number = Date.now()): number {
    const { perSecond, burst } = this.limit;
    let bucket = this.buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(burst, bucket.tokens + ((nowMs - bucket.at) / 1000) * perSecond);
      bucket.at = nowMs;
      // Re-inserted so the map stays ordered by last use: the first key is the idlest.
      this.buckets.delete(key);
    } else {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: burst, at: nowMs };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / perSecond;
  }
}
