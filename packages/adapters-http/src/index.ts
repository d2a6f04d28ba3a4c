export { buildApp, type AppOptions } from './app.ts';
export type { HttpDeps } from './context.ts';
export { signToken, createAuthenticator, type Principal } from './auth.ts';
export { createMetrics, type Metrics } from './metrics.ts';
export type { Limits, RateLimit } from './protection.ts';
