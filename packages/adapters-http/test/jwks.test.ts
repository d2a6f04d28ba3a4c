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
const authenticator = (options: { issuer?: string; audience?: string | null; adminClaim?: string } = {}) =>
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

  test('an unknown kid within the cooldown is refused without fetching the set again', async () => {
    idp.publish([rsa]);
    const authenticate = createJwksAuthenticator({ url: idp.jwksUrl, issuer: idp.issuer, cooldownMs: 60_000 });
    expect(await authenticate(bearer(await idp.sign(rsa, { sub: '1' })))).toEqual({ role: 'user', userId: 1 });
    const fetches = idp.fetches;
    const stranger = await newSigningKey('nobody', 'RS256');
    await expect(authenticate(bearer(await idp.sign(stranger, { sub: '1' })))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(idp.fetches).toBe(fetches);
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

  test('the key set unreachable is not the client\'s fault: 503 (retry later), not 401', async () => {
    idp.publish([rsa]);
    const authenticate = authenticator();
    idp.status = 500;
    try {
      await expect(authenticate(bearer(await idp.sign(rsa, { sub: '6' }, { audience: AUDIENCE })))).rejects.toMatchObject({ name: 'RetryLaterError' });
    } finally {
      idp.status = 200;
    }
    expect(await authenticate(bearer(await idp.sign(rsa, { sub: '6' }, { audience: AUDIENCE })))).toEqual({ role: 'user', userId: 6 });
  });
});
