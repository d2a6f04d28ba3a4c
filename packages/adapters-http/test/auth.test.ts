import { SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import { createAuthenticator, signToken } from '../src/auth.ts';

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
