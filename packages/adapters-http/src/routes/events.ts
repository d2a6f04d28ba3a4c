import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { listEvents, redeliverEvent, type OutboxRecordView } from '@shop/application';
import type { HttpDeps } from '../context.ts';
import type { PrincipalOf } from '../principal.ts';
import { EventIdParams, EventPage, EventResponse, EventsQuery, NoBody } from '../schemas.ts';
import { errorResponses, USER_SECURITY } from './docs.ts';

const present = (r: OutboxRecordView) => ({
  eventId: r.eventId,
  type: r.type,
  aggregateId: r.aggregateId,
  attempts: r.attempts,
  nextAttemptAt: r.nextAttemptAt.toISOString(),
  lastError: r.lastError,
  createdAt: r.createdAt.toISOString(),
  deliveredAt: r.deliveredAt?.toISOString() ?? null,
  payload: r.payload,
});

export const eventRoutes =
  (deps: HttpDeps, principalOf: PrincipalOf): FastifyPluginAsyncZod =>
  async (app) => {
    const common = { tags: ['admin'], security: USER_SECURITY };
    app.get(
      '/admin/events',
      {
        schema: {
          ...common,
          operationId: 'listEvents',
          summary: 'Undelivered data-platform events: pending (not yet failed) or failed (retrying)',
          querystring: EventsQuery,
          response: { 200: EventPage, ...errorResponses },
        },
      },
      async (req) => {
        const actor = await principalOf(req);
        const page = await listEvents(deps.outbox, actor, req.query.status, req.query.limit, req.query.cursor ?? null);
        return { items: page.items.map(present), nextCursor: page.nextCursor };
      },
    );
    app.post(
      '/admin/events/:eventId/redeliver',
      {
        schema: {
          ...common,
          operationId: 'redeliverEvent',
          summary: 'Deliver an event now (again, if it was delivered), with the same eventId',
          body: NoBody,
          params: EventIdParams,
          response: { 202: EventResponse, ...errorResponses },
        },
      },
      async (req, reply) => {
        const actor = await principalOf(req);
        return reply.code(202).send(present(await redeliverEvent(deps, actor, req.params.eventId)));
      },
    );
  };
