import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import { answeredCode, errorHandler, sendProblem } from './errors.ts';
import { problem } from './problem.ts';
import { TokenBuckets, type Limits } from './protection.ts';
import { userBuckets, type HttpDeps } from './context.ts';
import { adminRoutes } from './routes/admin.ts';
import { balanceRoutes } from './routes/balance.ts';
import { couponRoutes } from './routes/coupons.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { orderRoutes } from './routes/orders.ts';
import { productRoutes } from './routes/products.ts';

export interface AppOptions {
  readonly logger?: FastifyBaseLogger;
  /** Largest accepted body; an order of 100 lines is about 5 KiB. */
  readonly bodyLimit?: number;
  /** Rate limits and load shedding; none when absent. */
  readonly limits?: Limits;
  /** Take the client address from X-Forwarded-For (only behind a proxy that sets it). */
  readonly trustProxy?: boolean;
}

/** Operators' endpoints are never limited or shed: they are how an overload is seen. */
const isOperations = (url: string) => url.startsWith('/health/') || url === '/metrics';

export async function buildApp(deps: HttpDeps, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // A client that trickles its request (slowloris) is cut off instead of holding a socket.
    requestTimeout: 30_000,
    requestIdHeader: 'x-request-id',
    trustProxy: options.trustProxy ?? false,
    genReqId: () => randomUUID(),
    // One line per request at flash-sale rates is noise; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => sendProblem(reply, problem('NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}`)));
  // Every body is JSON; a client that forgets Content-Type still gets its JSON read (or a 400).
  app.addContentTypeParser('*', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  const limits = options.limits;
  if (limits?.perUser) userBuckets.set(deps, new TokenBuckets(limits.perUser));
  const ipBuckets = limits?.perIp ? new TokenBuckets(limits.perIp) : null;
  let inFlight = 0;
  app.addHook('onRequest', async (req, reply) => {
    if (isOperations(req.url)) return;
    if (limits?.maxInFlight && inFlight >= limits.maxInFlight) {
      return sendProblem(reply, problem('SERVICE_UNAVAILABLE', 'the service is overloaded; try again shortly'));
    }
    const wait = ipBuckets?.take(`ip:${req.ip}`) ?? 0;
    if (wait > 0) return sendProblem(reply, problem('RATE_LIMITED', `${req.ip} is sending requests faster than allowed`), wait);
    inFlight++;
    // 'close' fires once whether the answer was sent or the client went away.
    reply.raw.once('close', () => inFlight--);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.observeRequest(req.method, route, reply.statusCode, answeredCode.get(req) ?? null, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Order and payment service',
        version: '1.0.0',
        description: 'Orders paid from a pre-charged balance, with coupons. Errors are application/problem+json.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(healthRoutes(deps));
  await app.register(productRoutes(deps));
  await app.register(orderRoutes(deps));
  await app.register(balanceRoutes(deps));
  await app.register(couponRoutes(deps));
  await app.register(adminRoutes(deps));
  await app.register(eventRoutes(deps));
  return app;
}
