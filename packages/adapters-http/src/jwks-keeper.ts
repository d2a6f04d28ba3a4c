import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

export interface JwksKeeperOptions {
  readonly url: URL;
  /** How long a fetched set is used before it is fetched again, in the background (default 10 min). */
  readonly cacheMaxAgeMs?: number;
  /** While fetches fail, how long after its last good fetch a set is still used (default 6 h). */
  readonly staleMaxMs?: number;
  /** At most one fetch for an unknown `kid` (a rotated-in key) per this long (default 30 s). */
  readonly cooldownMs?: number;
  /** A failed fetch is tried again after this, doubling per failure up to `retryMaxMs` (defaults 1 s, 5 min). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** How long a fetch may take (default 5 s). */
  readonly timeoutMs?: number;
}

/** The key set could not be had: the identity provider's fault, not the client's. */
export class KeySetUnavailable extends Error {}

interface Held {
  readonly getKey: JWTVerifyGetKey;
  readonly fetchedAt: number;
}

/**
 * An identity provider's JSON Web Key Set, kept through its outages. The last good set is used
 * until `staleMaxMs` after it was fetched, however often fetching fails meanwhile; a set past
 * `cacheMaxAgeMs` is fetched again in the background, so no request waits on the provider once a
 * set is held. Failed fetches back off (doubling from `retryBaseMs`), and a token naming a `kid`
 * the set lacks fetches the set at most once per `cooldownMs`: a provider that is down, slow, or a
 * client sending made-up kids, costs the provider a fetch now and then, never one per request.
 * `generation` changes whenever a new set replaces the held one (remembered tokens are forgotten then).
 */
export class JwksKeeper {
  private held: Held | null = null;
  private fetching: Promise<void> | null = null;
  private failures = 0;
  private nextTryAt = 0;
  private lastKidFetch = Number.NEGATIVE_INFINITY;
  generation = 0;
  private readonly options: JwksKeeperOptions;

  constructor(options: JwksKeeperOptions) {
    this.options = options;
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const now = Date.now();
    if (!this.held) await this.fetch(now);
    else if (now - this.held.fetchedAt > (this.options.cacheMaxAgeMs ?? 600_000)) void this.fetch(now);
    const held = this.held as Held | null;
    if (!held) throw new KeySetUnavailable('the identity provider key set could not be fetched');
    if (now - held.fetchedAt > (this.options.staleMaxMs ?? 21_600_000)) {
      throw new KeySetUnavailable('the identity provider key set could not be fetched for longer than AUTH_JWKS_STALE_MAX_MS');
    }
    try {
      return await held.getKey(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // A fetch already under way (another token of a rotated-in key asked for it): decide on what it brings.
      if (this.fetching) {
        await this.fetching;
        return this.held!.getKey(header, token);
      }
      if (now - this.lastKidFetch < (this.options.cooldownMs ?? 30_000)) throw err;
      // A kid the set lacks: perhaps rotated in since; one fetch per cooldown, then decide on what it brought.
      this.lastKidFetch = now;
      await this.fetch(now);
      return this.held!.getKey(header, token);
    }
  };

  /** One fetch at a time, and none before the backoff after a failure has passed. */
  private fetch(now: number): Promise<void> {
    if (now < this.nextTryAt) return this.fetching ?? Promise.resolve();
    this.fetching ??= this.load().finally(() => (this.fetching = null));
    return this.fetching;
  }

  private async load(): Promise<void> {
    try {
      const res = await fetch(this.options.url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000), redirect: 'error' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const set = (await res.json()) as JSONWebKeySet;
      if (!Array.isArray(set?.keys)) throw new Error('not a JSON Web Key Set');
      this.held = { getKey: createLocalJWKSet(set), fetchedAt: Date.now() };
      this.generation++;
      this.failures = 0;
      this.nextTryAt = 0;
    } catch {
      this.failures++;
      const wait = Math.min(this.options.retryMaxMs ?? 300_000, (this.options.retryBaseMs ?? 1_000) * 2 ** (this.failures - 1));
      this.nextTryAt = Date.now() + wait;
    }
  }
}
