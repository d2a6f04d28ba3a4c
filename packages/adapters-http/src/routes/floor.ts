import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

const FloorBody = z.object({ userId: z.number().int().positive() });
const FloorResponse = z.object({ userId: z.number().int() });

/**
 * `POST /bench/floor` (AppOptions.benchFloorRoute): a small JSON body parsed and validated, a 201
 * JSON answer serialized from its schema, and nothing else: no token, no database. What an order
 * costs the service above this is the order's own.
 */
export const floorRoute: FastifyPluginAsyncZod = async (app) => {
  app.post('/bench/floor', { schema: { hide: true, body: FloorBody, response: { 201: FloorResponse } } }, async (req, reply) =>
    reply.code(201).send({ userId: req.body.userId }),
  );
};
