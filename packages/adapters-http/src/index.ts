export { buildApp, DEFAULT_TIMEOUTS, type AppOptions } from './app.ts';
export type { HttpDeps } from './context.ts';
export type { DrainBounds } from './drain.ts';
export { signToken, createAuthenticator, createJwksAuthenticator, type Authenticator, type JwksOptions, type Principal } from './auth.ts';
export { buildMetricsApp, createMetrics, type Metrics } from './metrics.ts';
export type { Limits, RateLimit, SharedLimitStore } from './protection.ts';
