import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpDeps } from '../context.ts';
import { sendProblem } from '../errors.ts';
import { problem } from '../problem.ts';

const Status = z.object({ status: z.string() });

export const healthRoutes =
  (deps: HttpDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/health/live', { schema: { tags: ['operations'], response: { 200: Status } } }, async () => ({ status: 'ok' }));
    app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
      const text = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).serializer((x: unknown) => x as string).send(text);
    });
    app.get('/health/ready', { schema: { tags: ['operations'], response: { 200: Status } } }, async (_req, reply) => {
      try {
        await deps.checkReady();
        return { status: 'ok' };
      } catch {
        return sendProblem(reply, problem('SERVICE_UNAVAILABLE', 'the database does not answer'));
      }
    });
  };
