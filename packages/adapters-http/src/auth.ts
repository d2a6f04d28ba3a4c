import { SignJWT, jwtVerify } from 'jose';
import { DomainError } from '@shop/domain';

export type Principal = { readonly role: 'admin'; readonly userId: number | null } | { readonly role: 'user'; readonly userId: number };

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

/** HS256 only: accepting the token's own `alg` claim is the classic JWT forgery. */
export async function authenticate(header: string | undefined, secret: Uint8Array): Promise<Principal> {
  const match = header ? BEARER.exec(header) : null;
  if (!match) throw new DomainError('UNAUTHORIZED', 'send Authorization: Bearer <token>');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(match[1]!, secret, { algorithms: ['HS256'] }));
  } catch {
    throw new DomainError('UNAUTHORIZED', 'the token is invalid or expired');
  }
  const sub = typeof payload.sub === 'string' && /^[1-9][0-9]{0,15}$/.test(payload.sub) ? Number(payload.sub) : null;
  const userId = sub !== null && Number.isSafeInteger(sub) ? sub : null;
  if (payload.role === 'admin') return { role: 'admin', userId };
  if (userId === null) throw new DomainError('UNAUTHORIZED', 'the token names no user');
  return { role: 'user', userId };
}

export function assertActsFor(principal: Principal, userId: number): void {
  if (principal.role !== 'admin' && principal.userId !== userId) {
    throw new DomainError('FORBIDDEN', 'this token may act only for its own user');
  }
}

export function assertAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new DomainError('FORBIDDEN', 'an admin token is required');
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
