import { SignJWT, exportSPKI } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { claimAt, createJwksAuthenticator } from '../src/auth.ts';
import { FakeIdentityProvider, newSigningKey, type SigningKey } from '../../../test/support/jwks.ts';

const bearer = (t: string) => `Bearer ${t}`;
const AUDIENCE = 'order-service';

let idp: FakeIdentityProvider;
let rsa: SigningKey;
let ec: SigningKey;

beforeAll(async () => {
  rsa = await newSigningKey('rsa-1', 'RS256');
  ec = await newSigningKey('ec-1', 'ES256');
  idp = await new FakeIdentityProvider().start([rsa, ec]);
});
afterAll(async () => {
  await idp?.stop();
});

/** An authenticator as the service builds one, but refetching at once on an unknown kid. */
const authenticator = (options: { issuer?: string; audience?: string | null; adminClaim?: string; retryBaseMs?: number } = {}) =>
  createJwksAuthenticator({ url: idp.jwksUrl, issuer: idp.issuer, audience: AUDIENCE, cooldownMs: 0, ...options });

describe('tokens of an identity provider (AUTH_JWKS_URL)', () => {
  test('RS256 and ES256 tokens verify against the JWKS, which is fetched once and cached', async () => {
    idp.publish([rsa, ec]);
    const before = idp.fetches;
    const authenticate = authenticator();
    expect(await authenticate(bearer(await idp.sign(rsa, { sub: '7' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 7 });
    expect(await authenticate(bearer(await idp.sign(ec, { sub: '8' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 8 });
    expect(await authenticate(bearer(await idp.sign(ec, { role: 'admin' }, { audience: AUDIENCE })))).toEqual({ role: 'admin', userId: null });
    expect(idp.fetches - before).toBe(1);
  });

  test('key rotation: a new kid is accepted once the set is fetched again; a removed key is refused, remembered tokens included', async () => {
    idp.publish([rsa]);
    const authenticate = authenticator();
    const old = await idp.sign(rsa, { sub: '1' }, { audience: AUDIENCE });
    expect(await authenticate(bearer(old))).toEqual({ role: 'user', userId: 1 });
    const fetchesBefore = idp.fetches;

    const rotated = await newSigningKey('rsa-2', 'RS256');
    idp.publish([rotated]); // the provider rotates: the new key in, the old one out
    const fresh = await idp.sign(rotated, { sub: '2' }, { audience: AUDIENCE });
    expect(await authenticate(bearer(fresh))).toEqual({ role: 'user', userId: 2 });
    expect(idp.fetches).toBe(fetchesBefore + 1); // the unknown kid made it fetch the set again

    // Signed by the removed key: a new token, and the one that verified before the rotation.
    const byRemoved = await idp.sign(rsa, { sub: '1' }, { audience: AUDIENCE });
    await expect(authenticate(bearer(byRemoved))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(authenticate(bearer(old))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await authenticate(bearer(fresh))).toEqual({ role: 'user', userId: 2 });
  });

  test('unknown kids fetch the set at most once per cooldown', async () => {
    idp.publish([rsa]);
    const authenticate = createJwksAuthenticator({ url: idp.jwksUrl, issuer: idp.issuer, audience: AUDIENCE, cooldownMs: 60_000 });
    expect(await authenticate(bearer(await idp.sign(rsa, { sub: '1' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 1 });
    const fetches = idp.fetches;
    // A client making up kids: the first unknown kid fetches the set once, the rest of the cooldown none.
    for (let i = 0; i < 20; i++) {
      const stranger = await newSigningKey(`nobody-${i}`, 'ES256');
      await expect(authenticate(bearer(await idp.sign(stranger, { sub: '1' }, { audience: AUDIENCE })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    }
    expect(idp.fetches - fetches).toBeLessThanOrEqual(1);
  });

  test('a wrong issuer or audience is refused; the audience is not checked when not configured; a token without exp is refused', async () => {
    idp.publish([rsa]);
    const authenticate = authenticator();
    await expect(authenticate(bearer(await idp.sign(rsa, { sub: '3' }, { audience: AUDIENCE, issuer: 'https://evil.test/' })))).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
    await expect(authenticate(bearer(await idp.sign(rsa, { sub: '3' }, { audience: 'another-service' })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(authenticate(bearer(await idp.sign(rsa, { sub: '3' })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' }); // no aud at all
    const lax = authenticator({ audience: null });
    expect(await lax(bearer(await idp.sign(rsa, { sub: '3' })))).toEqual({ role: 'user', userId: 3 });
    await expect(lax(bearer(await idp.sign(rsa, { sub: '3' }, { issuer: 'https://elsewhere.test/' })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const forever = await new SignJWT({ sub: '3' }).setProtectedHeader({ alg: rsa.alg, kid: rsa.kid, typ: 'JWT' }).setIssuer(idp.issuer).sign(rsa.privateKey);
    await expect(lax(bearer(forever))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  test('an expired token is refused, and a remembered one is refused once it expires', async () => {
    idp.publish([rsa]);
    const authenticate = authenticator();
    const expired = await idp.sign(rsa, { sub: '4' }, { audience: AUDIENCE, expiresIn: Math.floor(Date.now() / 1000) - 10 });
    await expect(authenticate(bearer(expired))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const exp = Math.ceil(Date.now() / 1000) + 1; // whole seconds: surely still valid when first verified
    const short = await idp.sign(rsa, { sub: '4' }, { audience: AUDIENCE, expiresIn: exp });
    expect(await authenticate(bearer(short))).toEqual({ role: 'user', userId: 4 });
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    await expect(authenticate(bearer(short))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  test('algorithm confusion: HS256 tokens are refused, even one keyed with the public key or naming a published kid', async () => {
    idp.publish([rsa]);
    const authenticate = authenticator();
    const hs256 = (secret: Uint8Array, kid?: string) =>
      new SignJWT({ role: 'admin' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })
        .setIssuer(idp.issuer)
        .setAudience(AUDIENCE)
        .setExpirationTime('1h')
        .sign(secret);
    const publicPem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    await expect(authenticate(bearer(await hs256(publicPem, rsa.kid)))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(authenticate(bearer(await hs256(new TextEncoder().encode('x'.repeat(32)))))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    // And an unsigned one.
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"role":"admin"}').toString('base64url')}.`;
    await expect(authenticate(bearer(none))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  test('the admin role from a configurable claim: a dotted path, an array holding "admin", a namespaced claim name', async () => {
    idp.publish([rsa]);
    const sign = (claims: Record<string, unknown>) => idp.sign(rsa, { sub: '5', ...claims }, { audience: AUDIENCE });
    const keycloak = authenticator({ adminClaim: 'realm_access.roles' });
    expect(await keycloak(bearer(await sign({ realm_access: { roles: ['offline_access', 'admin'] } })))).toEqual({ role: 'admin', userId: 5 });
    expect(await keycloak(bearer(await sign({ realm_access: { roles: ['user'] } })))).toEqual({ role: 'user', userId: 5 });
    expect(await keycloak(bearer(await sign({ role: 'admin' })))).toEqual({ role: 'user', userId: 5 }); // the default claim no longer counts

    const namespaced = authenticator({ adminClaim: 'https://shop.example/roles' });
    expect(await namespaced(bearer(await sign({ 'https://shop.example/roles': ['admin'] })))).toEqual({ role: 'admin', userId: 5 });

    const byDefault = authenticator();
    expect(await byDefault(bearer(await sign({ role: 'admin' })))).toEqual({ role: 'admin', userId: 5 });
    expect(await byDefault(bearer(await sign({ role: ['admin'] })))).toEqual({ role: 'admin', userId: 5 });
    expect(await byDefault(bearer(await sign({ role: 'administrator' })))).toEqual({ role: 'user', userId: 5 });
    await expect(byDefault(bearer(await idp.sign(rsa, { sub: 'auth0|abc' }, { audience: AUDIENCE })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });

    expect(claimAt({ a: { b: { c: 1 } } }, 'a.b.c')).toBe(1);
    expect(claimAt({ 'a.b': 2, a: { b: 3 } }, 'a.b')).toBe(2);
    expect(claimAt({ a: ['x'] }, 'a.0')).toBeUndefined();
    expect(claimAt({}, 'constructor.name')).toBeUndefined();
  });

  test('the key set unreachable before any was fetched is not the client\'s fault: 503 (retry later), not 401; tried again after a backoff', async () => {
    idp.publish([rsa]);
    const authenticate = authenticator({ retryBaseMs: 100 });
    idp.status = 500;
    try {
      await expect(authenticate(bearer(await idp.sign(rsa, { sub: '6' }, { audience: AUDIENCE })))).rejects.toMatchObject({ name: 'RetryLaterError' });
      // Within the backoff no request reaches the provider.
      const fetches = idp.fetches;
      for (let i = 0; i < 10; i++) await expect(authenticate(bearer(await idp.sign(rsa, { sub: '6' }, { audience: AUDIENCE })))).rejects.toMatchObject({ name: 'RetryLaterError' });
      expect(idp.fetches).toBe(fetches);
    } finally {
      idp.status = 200;
    }
    await new Promise((r) => setTimeout(r, 150));
    expect(await authenticate(bearer(await idp.sign(rsa, { sub: '6' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 6 });
  });
});

describe('identity provider outages', () => {
  test('stopped: the last good key set keeps verifying tokens while refetches back off; past AUTH_JWKS_STALE_MAX_MS, 503', async () => {
    const provider = await new FakeIdentityProvider().start([rsa]);
    const authenticate = createJwksAuthenticator({
      url: provider.jwksUrl, issuer: provider.issuer, audience: AUDIENCE, cacheMaxAgeMs: 20, staleMaxMs: 1_500, retryBaseMs: 200, rememberMs: 0,
    });
    const token = (sub: string) => provider.sign(rsa, { sub }, { audience: AUDIENCE });
    expect(await authenticate(bearer(await token('1')))).toEqual({ role: 'user', userId: 1 });
    await provider.stop(); // connections refused from now on
    // 400 ms of requests, each with a fresh token (nothing remembered): all verified on the last good set.
    const until = Date.now() + 400;
    let verified = 0;
    for (let n = 2; Date.now() < until; n++) {
      expect(await authenticate(bearer(await token(String(n))))).toEqual({ role: 'user', userId: n });
      verified++;
    }
    expect(verified).toBeGreaterThan(20);
    // Past the stale limit: the identity provider's fault, 503.
    await new Promise((r) => setTimeout(r, 1_600));
    await expect(authenticate(bearer(await token('99')))).rejects.toMatchObject({ name: 'RetryLaterError' });
  });

  test('its refetches back off: a provider failing for 600 ms is asked a handful of times, not once per request', async () => {
    const provider = await new FakeIdentityProvider().start([rsa]);
    const authenticate = createJwksAuthenticator({
      url: provider.jwksUrl, issuer: provider.issuer, audience: AUDIENCE, cacheMaxAgeMs: 0, retryBaseMs: 50, rememberMs: 0,
    });
    expect(await authenticate(bearer(await provider.sign(rsa, { sub: '1' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 1 });
    provider.status = 503;
    const before = provider.fetches;
    let requests = 0;
    for (const until = Date.now() + 600; Date.now() < until; requests++) {
      expect(await authenticate(bearer(await provider.sign(rsa, { sub: '2' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 2 });
    }
    // 50, 100, 200, 400 ms apart: at most 5 tries in 600 ms, whatever the request count.
    expect(requests).toBeGreaterThan(50);
    expect(provider.fetches - before).toBeLessThanOrEqual(6);
    await provider.stop();
  });

  test('slow: a request never waits on the refetch of a set it holds', async () => {
    const provider = await new FakeIdentityProvider().start([rsa]);
    const authenticate = createJwksAuthenticator({ url: provider.jwksUrl, issuer: provider.issuer, audience: AUDIENCE, cacheMaxAgeMs: 0, rememberMs: 0 });
    expect(await authenticate(bearer(await provider.sign(rsa, { sub: '1' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 1 });
    // From now on the provider does not answer until released: a request that waited for it would not resolve.
    const release = provider.hold();
    try {
      for (let i = 2; i < 12; i++) expect(await authenticate(bearer(await provider.sign(rsa, { sub: String(i) }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: i });
      expect(provider.waiting).toBeGreaterThan(0);
    } finally {
      release();
    }
    await provider.stop();
  });

  test('changed while down: once it answers again, the rotated key set replaces the kept one', async () => {
    const provider = await new FakeIdentityProvider().start([rsa]);
    const authenticate = createJwksAuthenticator({ url: provider.jwksUrl, issuer: provider.issuer, audience: AUDIENCE, cacheMaxAgeMs: 20, retryBaseMs: 20, cooldownMs: 0 });
    const old = await provider.sign(rsa, { sub: '1' }, { audience: AUDIENCE });
    expect(await authenticate(bearer(old))).toEqual({ role: 'user', userId: 1 });
    provider.status = 500;
    await new Promise((r) => setTimeout(r, 50));
    expect(await authenticate(bearer(old))).toEqual({ role: 'user', userId: 1 }); // remembered, or verified on the kept set
    const rotated = await newSigningKey('rsa-rotated', 'RS256');
    provider.publish([rotated]);
    provider.status = 200;
    const fresh = await provider.sign(rotated, { sub: '2' }, { audience: AUDIENCE });
    expect(await authenticate(bearer(fresh))).toEqual({ role: 'user', userId: 2 });
    await expect(authenticate(bearer(await provider.sign(rsa, { sub: '1' }, { audience: AUDIENCE })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await provider.stop();
  });
});
