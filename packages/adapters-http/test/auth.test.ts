import { createHmac, createSecretKey } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import { createAuthenticator, signToken, verifyHs256 } from '../src/auth.ts';

const secret = new TextEncoder().encode('a-secret-of-at-least-thirty-two-bytes!!');
const other = new TextEncoder().encode('another-secret-of-at-least-32-bytes!!!');
const bearer = (t: string) => `Bearer ${t}`;

describe('createAuthenticator', () => {
  test('remembers a verified token, but never past its exp', async () => {
    const authenticate = createAuthenticator(secret);
    // exp is whole seconds: at least one whole second ahead, so the token is surely valid while
    // it is verified and then remembered (the next whole second could be a millisecond away).
    const exp = Math.ceil(Date.now() / 1000) + 1;
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('7').setExpirationTime(exp).sign(secret);
    expect(await authenticate(bearer(token))).toEqual({ role: 'user', userId: 7 });
    expect(await authenticate(bearer(token))).toEqual({ role: 'user', userId: 7 });
    // Wait for the condition itself, the clock reaching exp, not for a guess of how long that takes
    // (a timer may fire a little early).
    while (Date.now() < exp * 1000) await new Promise((r) => setTimeout(r, exp * 1000 - Date.now()));
    await expect(authenticate(bearer(token))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  test('trusts only the exact bytes that verified: the same claims under another signature fail', async () => {
    const authenticate = createAuthenticator(secret);
    const good = await signToken(secret, { admin: true });
    expect(await authenticate(bearer(good))).toMatchObject({ role: 'admin' });
    const forged = await signToken(other, { admin: true });
    await expect(authenticate(bearer(forged))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const [header, payload] = good.split('.');
    await expect(authenticate(bearer(`${header}.${payload}.${'A'.repeat(43)}`))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  test('forgets the oldest when full, and still answers for it by verifying again', async () => {
    const authenticate = createAuthenticator(secret, 2);
    const tokens = await Promise.all([1, 2, 3].map((userId) => signToken(secret, { userId })));
    for (const t of tokens) await authenticate(bearer(t));
    expect(await authenticate(bearer(tokens[0]!))).toEqual({ role: 'user', userId: 1 });
  });
});

describe('verifyHs256 (synchronous) against jose', () => {
  const key = createSecretKey(secret);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const signed = (header: unknown, payload: unknown, with_ = secret) => {
    const input = `${b64(header)}.${b64(payload)}`;
    return `${input}.${createHmac('sha256', with_).update(input).digest('base64url')}`;
  };
  const now = Math.floor(Date.now() / 1000);
  const cases: Record<string, string> = {
    plain: signed({ alg: 'HS256', typ: 'JWT' }, { sub: '7' }),
    'exp ahead': signed({ alg: 'HS256' }, { sub: '7', exp: now + 60 }),
    'exp passed': signed({ alg: 'HS256' }, { sub: '7', exp: now - 1 }),
    'exp now': signed({ alg: 'HS256' }, { sub: '7', exp: now }),
    'exp a string': signed({ alg: 'HS256' }, { sub: '7', exp: String(now + 60) }),
    'nbf ahead': signed({ alg: 'HS256' }, { sub: '7', nbf: now + 60 }),
    'nbf passed': signed({ alg: 'HS256' }, { sub: '7', nbf: now - 60 }),
    'iat a string': signed({ alg: 'HS256' }, { sub: '7', iat: 'yesterday' }),
    'alg none': signed({ alg: 'none' }, { sub: '7' }),
    'alg HS512': signed({ alg: 'HS512' }, { sub: '7' }),
    'no alg': signed({ typ: 'JWT' }, { sub: '7' }),
    crit: signed({ alg: 'HS256', crit: ['exp'] }, { sub: '7' }),
    'header an array': signed(['HS256'], { sub: '7' }),
    'payload an array': signed({ alg: 'HS256' }, [1]),
    'payload a number': signed({ alg: 'HS256' }, 7),
    'another secret': signed({ alg: 'HS256' }, { sub: '7' }, other),
    'signature cut': signed({ alg: 'HS256' }, { sub: '7' }).slice(0, -2),
    'no signature': `${b64({ alg: 'HS256' })}.${b64({ sub: '7' })}.`,
    'header not json': `bm90IGpzb24.${b64({ sub: '7' })}.AAAA`,
  };
  for (const [name, token] of Object.entries(cases)) {
    test(`${name}: the same verdict`, async () => {
      const byJose = await jwtVerify(token, key, { algorithms: ['HS256'] }).then((r) => r.payload, () => 'refused');
      let ours: unknown;
      try {
        ours = verifyHs256(token, key);
      } catch {
        ours = 'refused';
      }
      expect(ours).toEqual(byJose);
    });
  }
});
