import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { JwksKeeper, KeySetUnavailable } from './jwks-keeper.ts';
import { RetryLaterError } from '@shop/application';
import { DomainError } from '@shop/domain';

/**
 * Whom a token names: the Actor the use cases take, and they decide what it may do. An admin
 * token's `sub`, when it has one, is kept but grants nothing.
 */
export type Principal = { readonly role: 'admin'; readonly userId: number | null } | { readonly role: 'user'; readonly userId: number };

export type Authenticator = (header: string | undefined) => Promise<Principal>;

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

function bearerToken(header: string | undefined): string {
  const match = header ? BEARER.exec(header) : null;
  if (!match) throw new DomainError('UNAUTHORIZED', 'send Authorization: Bearer <token>');
  return match[1]!;
}

const invalid = () => new DomainError('UNAUTHORIZED', 'the token is invalid or expired');

const decodeJson = (part: string): unknown => {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
};
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * HS256 only: accepting the token's own `alg` claim is the classic JWT forgery. Verified here, in
 * one synchronous HMAC (microseconds), with the checks jose's jwtVerify makes of such a token: a
 * JSON object header naming HS256 and no `crit` extension, the signature compared in constant time,
 * a JSON object payload whose `exp`, `nbf` and `iat`, when present, are numbers, `exp` not reached
 * and `nbf` reached (whole seconds). WebCrypto's asynchronous verify was a hop through the thread
 * pool per token and 8 % of the service's busy samples under uniform (`pnpm bench --cpu-prof`).
 */
export function verifyHs256(token: string, secret: KeyObject, nowMs = Date.now()): JWTPayload {
  const [head, body, signature, extra] = token.split('.');
  if (head === undefined || body === undefined || signature === undefined || extra !== undefined) throw invalid();
  const header = decodeJson(head);
  if (!isObject(header) || header.alg !== 'HS256' || 'crit' in header) throw invalid();
  const expected = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  const payload = decodeJson(body);
  if (!isObject(payload)) throw invalid();
  const now = Math.floor(nowMs / 1000);
  for (const claim of ['exp', 'nbf', 'iat'] as const) if (claim in payload && typeof payload[claim] !== 'number') throw invalid();
  if (typeof payload.exp === 'number' && payload.exp <= now) throw invalid();
  if (typeof payload.nbf === 'number' && payload.nbf > now) throw invalid();
  return payload as JWTPayload;
}

const isAdminValue = (value: unknown) => value === 'admin' || (Array.isArray(value) && value.includes('admin'));

/**
 * The value of claim `name`: a top-level claim of exactly that name first (so a namespaced
 * claim such as `https://shop.example/role` works), else the dotted path through nested objects
 * (`realm_access.roles`).
 */
export function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function principalFrom(payload: JWTPayload, adminClaim: string): Principal {
  const sub = typeof payload.sub === 'string' && /^[1-9][0-9]{0,15}$/.test(payload.sub) ? Number(payload.sub) : null;
  const userId = sub !== null && Number.isSafeInteger(sub) ? sub : null;
  if (isAdminValue(claimAt(payload, adminClaim))) return { role: 'admin', userId };
  if (userId === null) throw new DomainError('UNAUTHORIZED', 'the token names no user');
  return { role: 'user', userId };
}

interface Remembered {
  readonly principal: Principal;
  readonly expiresAtMs: number;
}

/**
 * Remembers tokens it has verified: a client sends the same token with every request, and
 * verifying its HMAC through WebCrypto was a tenth of the service's CPU under load
 * (`pnpm bench --cpu-prof`). The key is the whole token, signature included, so only the exact
 * bytes that verified are ever trusted from memory; tokens that fail are not remembered. Bounded;
 * the oldest entries go first.
 */
class TokenMemory {
  private readonly entries = new Map<string, Remembered>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }

  get(token: string): Principal | null {
    const hit = this.entries.get(token);
    if (!hit) return null;
    if (Date.now() < hit.expiresAtMs) return hit.principal;
    this.entries.delete(token);
    return null;
  }

  set(token: string, principal: Principal, expiresAtMs: number): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { principal, expiresAtMs });
  }

  clear(): void {
    this.entries.clear();
  }
}

const expiryOf = (payload: JWTPayload) => (typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY);

/**
 * HS256 tokens signed with `secret` (the demo's and the tests'), an admin by `"role": "admin"`.
 * Verified tokens are remembered until their `exp`.
 */
export function createAuthenticator(secret: Uint8Array, maxRemembered = 10_000): Authenticator {
  const key = createSecretKey(secret);
  const memory = new TokenMemory(maxRemembered);
  return async (header) => {
    const token = bearerToken(header);
    const hit = memory.get(token);
    if (hit) return hit;
    const payload = verifyHs256(token, key);
    const principal = principalFrom(payload, 'role');
    memory.set(token, principal, expiryOf(payload));
    return principal;
  };
}

export interface JwksOptions {
  /** The identity provider's JSON Web Key Set, e.g. `https://idp.example/.well-known/jwks.json`. */
  readonly url: string | URL;
  /** The `iss` every token must carry. */
  readonly issuer: string;
  /** Required in `aud`; null only where a deployment turned the check off (AUTH_AUDIENCE=*). */
  readonly audience: string | null;
  /** Where the admin role is read: a claim name or dotted path whose value is "admin" or an array holding "admin". Default `role`. */
  readonly adminClaim?: string;
  /** At most one fetch of the key set for an unknown `kid` per this long (default 30 s). */
  readonly cooldownMs?: number;
  /** How long a fetched key set is used before it is fetched again, in the background (default 10 min). */
  readonly cacheMaxAgeMs?: number;
  /** While fetches fail, how long the last good set is still used (AUTH_JWKS_STALE_MAX_MS, default 6 h). */
  readonly staleMaxMs?: number;
  /** A failed fetch is tried again after this, doubling up to retryMaxMs (defaults 1 s, 5 min). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** How long a fetch of the key set may take (default 5 s). */
  readonly timeoutMs?: number;
  /** How long a verified token is trusted from memory at most (default 60 s; never past its `exp`). */
  readonly rememberMs?: number;
  readonly maxRemembered?: number;
}

/**
 * RS256/ES256 tokens of an identity provider, verified against its JWKS, kept through the
 * provider's outages (JwksKeeper: the last good set used for hours while refetches back off; an
 * unknown `kid` fetches the set at most once per cooldown). Only the asymmetric algorithms are
 * accepted, so an HS256 token "signed" with a public key is refused.
 *
 * Verified tokens are remembered, as for HS256, but for at most `rememberMs`, and all of them are
 * forgotten whenever a new key set replaces the held one: a key removed from the set stops being
 * trusted as soon as the service has seen the set without it.
 */
export function createJwksAuthenticator(options: JwksOptions): Authenticator {
  const keeper = new JwksKeeper({
    url: new URL(options.url),
    cooldownMs: options.cooldownMs,
    cacheMaxAgeMs: options.cacheMaxAgeMs,
    staleMaxMs: options.staleMaxMs,
    retryBaseMs: options.retryBaseMs,
    retryMaxMs: options.retryMaxMs,
    timeoutMs: options.timeoutMs,
  });
  // exp required: a token of an identity provider without one would be trusted for ever.
  const verifyOptions = {
    algorithms: ['RS256', 'ES256'],
    issuer: options.issuer,
    requiredClaims: ['exp'],
    ...(options.audience ? { audience: options.audience } : {}),
  };
  const adminClaim = options.adminClaim || 'role';
  const rememberMs = options.rememberMs ?? 60_000;
  const memory = new TokenMemory(options.maxRemembered ?? 10_000);
  let generation = keeper.generation;
  const forgetIfRefetched = () => {
    if (keeper.generation !== generation) {
      generation = keeper.generation;
      memory.clear();
    }
  };
  return async (header) => {
    const token = bearerToken(header);
    forgetIfRefetched();
    const hit = memory.get(token);
    if (hit) return hit;
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, keeper.getKey, verifyOptions)).payload;
    } catch (err) {
      if (err instanceof KeySetUnavailable) throw new RetryLaterError(`${err.message}; try again shortly`);
      throw invalid();
    } finally {
      forgetIfRefetched();
    }
    const principal = principalFrom(payload, adminClaim);
    memory.set(token, principal, Math.min(expiryOf(payload), Date.now() + rememberMs));
    return principal;
  };
}

/** For operators and tests: a token the service accepts. */
export async function signToken(
  secret: Uint8Array,
  claims: { userId?: number; admin?: boolean },
  expiresIn: string | null = '30d',
): Promise<string> {
  let jwt = new SignJWT(claims.admin ? { role: 'admin' } : {}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt();
  if (claims.userId !== undefined) jwt = jwt.setSubject(String(claims.userId));
  if (expiresIn) jwt = jwt.setExpirationTime(expiresIn);
  return jwt.sign(secret);
}
