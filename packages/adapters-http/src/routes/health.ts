import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { assertAdmin, RetryLaterError } from '@shop/application';
import type { HttpDeps } from '../context.ts';
import type { PrincipalOf } from '../principal.ts';
import { sendProblem } from '../errors.ts';
import { sendMetrics } from '../metrics.ts';
import { problem } from '../problem.ts';
import { errorResponses, PUBLIC_SECURITY, USER_SECURITY } from './docs.ts';

const Status = z.object({
  status: z.string(),
  delivery: z.enum(['ok', 'degraded']).optional().describe('degraded: the data platform is taken for down; events wait in the outbox'),
});
/** Sent as it is (sendMetrics): documented, not serialized. */
const MetricsText = {
  description: 'The Prometheus text exposition format',
  content: { 'text/plain': { schema: z.string() } },
};

/** How long one readiness answer is reused. */
export const READY_MAX_AGE_MS = 1_000;

/**
 * One check in flight at a time, its outcome reused until it is `maxAgeMs` old: a flood of probes
 * costs the database one query a second, and cannot take pool connections from the orders. The
 * outcome is null when ready, else why not: the check's own words when it says why (a
 * RetryLaterError: not migrated yet, a release too old for the database), else that the database
 * does not answer.
 */
export function sharedCheck(check: () => Promise<void>, maxAgeMs: number, now: () => number = Date.now): () => Promise<string | null> {
  let last: Promise<string | null> | null = null;
  let settledAt: number | null = null;
  return () => {
    if (last && (settledAt === null || now() - settledAt < maxAgeMs)) return last;
    settledAt = null;
    const current = check().then(
      () => null,
      (err: unknown) => (err instanceof RetryLaterError ? err.message : 'the database does not answer'),
    );
    last = current;
    void current.then(() => {
      if (last === current) settledAt = now();
    });
    return current;
  };
}

export const healthRoutes =
  (deps: HttpDeps, principalOf: PrincipalOf): FastifyPluginAsyncZod =>
  async (app) => {
    const ready = sharedCheck(deps.checkReady, READY_MAX_AGE_MS);
    app.get(
      '/health/live',
      {
        schema: {
          tags: ['operations'],
          operationId: 'getLiveness',
          summary: 'Liveness: 200 while the process runs (no token)',
          security: PUBLIC_SECURITY,
          response: { 200: Status, ...errorResponses },
        },
      },
      async () => ({ status: 'ok' }),
    );
    // On the public port only for admins; without a token on METRICS_PORT (metrics.ts).
    app.get(
      '/metrics',
      {
        schema: {
          tags: ['operations'],
          operationId: 'getMetrics',
          summary: 'Prometheus metrics (admin token; or no token on METRICS_PORT)',
          security: USER_SECURITY,
          response: { 200: MetricsText, ...errorResponses },
        },
      },
      async (req, reply) => {
        assertAdmin(await principalOf(req));
        return sendMetrics(deps.metrics, reply);
      },
    );
    app.get(
      '/health/ready',
      {
        schema: {
          tags: ['operations'],
          operationId: 'getReadiness',
          summary: 'Readiness: 200 when the database answers, else 503 (no token)',
          security: PUBLIC_SECURITY,
          response: { 200: Status, ...errorResponses },
        },
      },
      async (_req, reply) => {
        // Delivery down is degraded, not failing: orders still work, and events wait in the outbox.
        const notReady = await ready();
        if (notReady === null) return { status: 'ok', delivery: deps.deliveryDegraded?.() ? ('degraded' as const) : ('ok' as const) };
        return sendProblem(reply, problem('SERVICE_UNAVAILABLE', notReady));
      },
    );
  };
