import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';

describe('HOST', () => {
  test('loopback when the service generates its own AUTH_SECRET (a demo printing tokens), all interfaces otherwise', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ AUTH_SECRET: 'x'.repeat(32) }).host).toBe('0.0.0.0');
    expect(loadConfig({ AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json', AUTH_ISSUER: 'https://idp.example/', AUTH_AUDIENCE: 'orders' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '::1', AUTH_SECRET: 'x'.repeat(32) }).host).toBe('::1');
  });
});

describe('AUTH_JWKS_URL and its settings', () => {
  test('are read together: issuer and audience required, `role` the default admin claim, the last good key set kept 6 h', () => {
    const idp = { AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'https://idp.example/' };
    expect(loadConfig({}).jwks).toBeNull();
    expect(() => loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks' })).toThrow(/AUTH_ISSUER must be set with AUTH_JWKS_URL/);
    expect(() => loadConfig(idp)).toThrow(/AUTH_AUDIENCE must be set with AUTH_JWKS_URL/);
    expect(loadConfig({ ...idp, AUTH_AUDIENCE: 'orders' }).jwks).toEqual({
      url: 'https://idp.example/jwks',
      issuer: 'https://idp.example/',
      audience: 'orders',
      adminClaim: 'role',
      staleMaxMs: 21_600_000,
    });
    // Any audience only when said so.
    expect(loadConfig({ ...idp, AUTH_AUDIENCE: '*', AUTH_ADMIN_CLAIM: 'realm_access.roles', AUTH_JWKS_STALE_MAX_MS: '60000' }).jwks).toEqual({
      url: 'https://idp.example/jwks',
      issuer: 'https://idp.example/',
      audience: null,
      adminClaim: 'realm_access.roles',
      staleMaxMs: 60_000,
    });
  });

  test('the key set over https only: http:// on loopback, or with AUTH_JWKS_ALLOW_HTTP=true', () => {
    const idp = { AUTH_ISSUER: 'https://idp.example/', AUTH_AUDIENCE: 'orders' };
    expect(() => loadConfig({ ...idp, AUTH_JWKS_URL: 'http://idp.example/jwks' })).toThrow(/must be https:\/\//);
    expect(loadConfig({ ...idp, AUTH_JWKS_URL: 'http://idp.example/jwks', AUTH_JWKS_ALLOW_HTTP: 'true' }).jwks?.url).toBe('http://idp.example/jwks');
    for (const host of ['127.0.0.1:8080', 'localhost', '[::1]:9000']) {
      expect(loadConfig({ ...idp, AUTH_JWKS_URL: `http://${host}/jwks` }).jwks?.url).toBe(`http://${host}/jwks`);
    }
  });

  test('a production start needs AUTH_SECRET or AUTH_JWKS_URL', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/AUTH_SECRET/);
    expect(loadConfig({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'https://idp.example/', AUTH_AUDIENCE: 'o' }).authSecret).toBeNull();
  });

  test('refuses what it would silently ignore or cannot use', () => {
    expect(() => loadConfig({ AUTH_ISSUER: 'https://idp.example/' })).toThrow(/AUTH_ISSUER only apply with AUTH_JWKS_URL/);
    expect(() => loadConfig({ AUTH_ADMIN_CLAIM: 'roles', AUTH_AUDIENCE: 'x' })).toThrow(/AUTH_AUDIENCE, AUTH_ADMIN_CLAIM/);
    expect(() => loadConfig({ AUTH_JWKS_URL: 'ftp://idp.example/jwks' })).toThrow(/AUTH_JWKS_URL/);
    expect(() => loadConfig({ AUTH_JWKS_URL: 'not a url' })).toThrow(/AUTH_JWKS_URL/);
  });
});

describe('logs', () => {
  const capture = (isTTY: boolean) => {
    const out = Object.assign(new PassThrough(), { isTTY });
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    return { out, text: () => chunks.join('') };
  };

  test('JSON lines when stdout is not a terminal (a pipe, a file, a log collector)', async () => {
    const { out, text } = capture(false);
    const log = createLogger('info', out);
    log.info({ url: 'http://127.0.0.1:3000', req: { headers: { authorization: 'Bearer secret.token.here' } } }, 'listening');
    log.debug('not at this level');
    await new Promise((r) => setImmediate(r));
    const lines = text().trim().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 30, msg: 'listening', url: 'http://127.0.0.1:3000' });
    expect(entry.req.headers.authorization).toBe('[Redacted]');
  });

  test('readable lines through pino-pretty when a person watches a terminal', async () => {
    const { out, text } = capture(true);
    const log = createLogger('info', out);
    log.info({ url: 'http://127.0.0.1:3000', req: { headers: { authorization: 'Bearer secret.token.here' } } }, 'listening');
    await new Promise((r) => setTimeout(r, 50));
    const printed = text();
    expect(printed).toContain('listening');
    expect(printed).toContain('INFO');
    expect(printed).not.toContain('secret.token.here');
    expect(() => JSON.parse(printed.trim())).toThrow();
  });
});
