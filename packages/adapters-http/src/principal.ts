import type { FastifyRequest } from 'fastify';
import { createAuthenticator, type Authenticator, type Principal } from './auth.ts';
import type { HttpDeps } from './context.ts';
import { RateLimitedError, type UserLimiter } from './protection.ts';

/** Whom a request acts as; what the routes hand to the use cases. */
export type PrincipalOf = (req: FastifyRequest) => Promise<Principal>;

/**
 * Built once per app by buildApp, from the deps' way of verifying tokens and the app's per-user
 * limit (null: none). The routes call it in their handlers, after schema validation, as the
 * contract orders errors (400 before 401); a user over their rate is 429 after authentication,
 * since only then is the user known. Admins, the operators, are not limited.
 */
export function principalOfRequests(deps: Pick<HttpDeps, 'authenticate' | 'authSecret'>, userLimit: UserLimiter | null): PrincipalOf {
  // Made at the first authenticated request: an app that never serves one (a test of its
  // framework errors) needs no way to verify tokens.
  let authenticate: Authenticator | null = null;
  return async (req) => {
    authenticate ??= authenticatorOf(deps);
    const principal = await authenticate(req.headers.authorization);
    if (userLimit && principal.role === 'user') {
      const wait = await userLimit(req, principal.userId);
      if (wait > 0) throw new RateLimitedError(`user ${principal.userId} is sending requests faster than allowed`, wait);
    }
    return principal;
  };
}

function authenticatorOf(deps: Pick<HttpDeps, 'authenticate' | 'authSecret'>): Authenticator {
  if (deps.authenticate) return deps.authenticate;
  if (!deps.authSecret) throw new Error('HttpDeps needs authenticate or authSecret');
  return createAuthenticator(deps.authSecret);
}
