import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';

describe('HOST', () => {
  test('loopback when the service generates its own AUTH_SECRET (a demo printing tokens), all interfaces otherwise', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ AUTH_SECRET: 'x'.repeat(32) }).host).toBe('0.0.0.0');
    expect(loadConfig({ AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json', AUTH_ISSUER: 'https://idp.example/' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '::1', AUTH_SECRET: 'x'.repeat(32) }).host).toBe('::1');
  });
});

describe('AUTH_JWKS_URL and its settings', () => {
  test('are read together, with `role` as the default admin claim', () => {
    expect(loadConfig({}).jwks).toBeNull();
    expect(() => loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks' })).toThrow(/AUTH_ISSUER must be set with AUTH_JWKS_URL/);
    expect(loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'https://idp.example/' }).jwks).toEqual({
      url: 'https://idp.example/jwks',
      issuer: 'https://idp.example/',
      audience: null,
      adminClaim: 'role',
    });
    expect(
      loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'https://idp.example/', AUTH_AUDIENCE: 'orders', AUTH_ADMIN_CLAIM: 'realm_access.roles' }).jwks,
    ).toEqual({ url: 'https://idp.example/jwks', issuer: 'https://idp.example/', audience: 'orders', adminClaim: 'realm_access.roles' });
  });

  test('a production start needs AUTH_SECRET or AUTH_JWKS_URL', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/AUTH_SECRET/);
    expect(loadConfig({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'https://idp.example/' }).authSecret).toBeNull();
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
