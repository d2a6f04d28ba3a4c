import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { Client, startTestApp, type TestApp } from '../../../test/support/http.ts';
import { FakeIdentityProvider, newSigningKey, type SigningKey } from '../../../test/support/jwks.ts';

/** The service configured as in production with an identity provider: AUTH_JWKS_URL and friends. */
let tdb: TestDatabase;
let idp: FakeIdentityProvider;
let key: SigningKey;
let app: TestApp;

beforeAll(async () => {
  tdb = await createTestDatabase();
  key = await newSigningKey('idp-key-1', 'ES256');
  idp = await new FakeIdentityProvider().start([key]);
  app = await startTestApp(tdb.url, {
    AUTH_JWKS_URL: idp.jwksUrl,
    AUTH_ISSUER: idp.issuer,
    AUTH_AUDIENCE: 'order-service',
    AUTH_ADMIN_CLAIM: 'realm_access.roles',
  });
});
afterAll(async () => {
  await app?.close();
  await idp?.stop();
  await tdb?.drop();
});

test('identity provider tokens work end to end; the HS256 AUTH_SECRET tokens no longer do', async () => {
  expect(app.service.authSecret).toBeNull();
  expect(app.service.secretGenerated).toBe(false);
  const admin = new Client(app.service.url, await idp.sign(key, { sub: 'ops', realm_access: { roles: ['admin'] } }, { audience: 'order-service' }));
  const created = await admin.post('/admin/users', { name: 'from the idp' });
  expect(created.status).toBe(201);
  const userId = created.body.userId as number;
  const userToken = await idp.sign(key, { sub: String(userId) }, { audience: 'order-service' });
  expect((await admin.get(`/users/${userId}/balance`, { token: userToken })).status).toBe(200);
  expect((await admin.get(`/users/${userId + 1}/balance`, { token: userToken })).status).toBe(403);

  // The test client's own admin token is HS256 with the AUTH_SECRET the service was also given.
  const hs256 = await app.client.post('/admin/users', { name: 'x' });
  expect(hs256.status).toBe(401);
  expect(hs256.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(hs256.body.code).toBe('UNAUTHORIZED');

  const wrongAudience = await idp.sign(key, { sub: String(userId) }, { audience: 'another-service' });
  expect((await admin.get(`/users/${userId}/balance`, { token: wrongAudience })).status).toBe(401);
  const notAdmin = await idp.sign(key, { sub: String(userId), role: 'admin' }, { audience: 'order-service' }); // `role` is not the configured claim
  expect((await admin.post('/admin/users', { name: 'x' }, { token: notAdmin })).status).toBe(403);
});
