import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isTrustedPeer, limitConnectionsPerAddress } from './connections.ts';
import { DEFAULT_DRAIN, drainBeforeClose, type DrainBounds } from './drain.ts';
import { answeredCode, clientErrorHandler, errorHandler, frameworkErrorHandler, MAX_URL_LENGTH, sendProblem } from './errors.ts';
import { problem } from './problem.ts';
import { registerLimits, type Limits, type SharedLimitStore } from './protection.ts';
import type { HttpDeps } from './context.ts';
import { principalOfRequests } from './principal.ts';
import { adminRoutes } from './routes/admin.ts';
import { balanceRoutes } from './routes/balance.ts';
import { couponRoutes } from './routes/coupons.ts';
import { OPENAPI_SERVERS, OPENAPI_TAGS } from './routes/docs.ts';
import { eventRoutes } from './routes/events.ts';
import { floorRoute } from './routes/floor.ts';
import { healthRoutes } from './routes/health.ts';
import { orderRoutes } from './routes/orders.ts';
import { productRoutes } from './routes/products.ts';

export interface AppOptions {
  readonly logger?: FastifyBaseLogger;
  /** Largest accepted body; an order of 100 lines is about 5 KiB. */
  readonly bodyLimit?: number;
  /** Rate limits and load shedding; none when absent. */
  readonly limits?: Limits;
  /**
   * Open connections one client address may have at once; a new one past it is closed as soon as
   * it is accepted (connections.ts). Connections from the trusted proxies (trustProxy) are not
   * limited: each carries many clients. 0 or absent = no limit.
   */
  readonly maxConnectionsPerAddress?: number;
  /** Where rate-limit counters are shared between instances (Redis); null or absent = in process. */
  readonly sharedLimits?: SharedLimitStore | null;
  /**
   * Which peers are proxies whose X-Forwarded-For is believed, as Fastify's trustProxy: a hop count
   * (1 = the one load balancer in front: the client address is the right-most entry it appended),
   * or a list of proxy addresses or CIDRs. Never `true`: that believes the client's own header.
   */
  readonly trustProxy?: false | number | readonly string[];
  /**
   * How long a client may take to send its whole request, head and body, counted from its first
   * byte (slowloris); 15 s by default (DEFAULT_TIMEOUTS). Past it: 408 and the connection closed.
   */
  readonly requestTimeoutMs?: number;
  /**
   * How long a client may take to send the request head, counted from its first byte, or from
   * the connection opening for the first request; 10 s by default, at most requestTimeoutMs.
   */
  readonly headersTimeoutMs?: number;
  /**
   * How long a connection may stay idle between requests; 72 s by default, longer than the 60 s
   * after which nginx and common load balancers close their idle upstream connections, so that the
   * proxy closes first and never reuses a connection this side is closing at that moment.
   */
  readonly keepAliveTimeoutMs?: number;
  /**
   * After an answer that closes the connection before the body was read (413 over bodyLimit),
   * how much more of the body is read and discarded so that a client still writing it reads the
   * answer instead of a reset: 10 MiB or 5 s by default (drain.ts).
   */
  readonly drainBeforeClose?: DrainBounds;
  /**
   * Benchmarks only (BENCH_FLOOR_ROUTE=1): `POST /bench/floor`, a route that does nothing behind
   * every hook and plugin the real routes have, so that `pnpm bench --workloads floor` measures
   * what the HTTP edge alone costs. Not in the contract nor in /openapi.json.
   */
  readonly benchFloorRoute?: boolean;
}

/**
 * Fastify compiles a list with proxy-addr. It ignores a bare hop count (a direct client could
 * supply the hops), so a count becomes the trust function Fastify once made of it: believe the
 * `hops` nearest entries. Only sound when the instances are reachable through the proxies alone.
 */
function trustedProxies(trust: false | number | readonly string[]): false | string[] | ((address: string, hop: number) => boolean) {
  if (trust === false || trust === 0) return false;
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return [...trust];
}

/** Probes are never limited or shed: they are how an overload is seen. */
const isHealth = (url: string) => url.startsWith('/health/');
/** Nor is /metrics shed; it takes an admin token on this port, so unauthenticated floods are limited. */
const isMetrics = (url: string) => url === '/metrics' || url.startsWith('/metrics?');

/** The timeouts of a client's connection when AppOptions does not say (README, docs/operations.md). */
export const DEFAULT_TIMEOUTS = { headersMs: 10_000, requestMs: 15_000, keepAliveMs: 72_000 } as const;

export async function buildApp(deps: HttpDeps, options: AppOptions = {}): Promise<FastifyInstance> {
  const trustProxy = trustedProxies(options.trustProxy ?? false);
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestMs;
  // Node refuses a head timeout longer than the whole request's.
  const headersTimeout = Math.min(options.headersTimeoutMs ?? DEFAULT_TIMEOUTS.headersMs, requestTimeout);
  const keepAliveTimeout = options.keepAliveTimeoutMs ?? DEFAULT_TIMEOUTS.keepAliveMs;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // A client that trickles its request head or body (slowloris) is answered 408 and cut off
    // instead of holding a socket; Node checks a tenth of the shorter timeout apart (by default
    // every 30 s, which would let a 10 s timeout run to 40 s).
    requestTimeout,
    keepAliveTimeout,
    http: {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.round(headersTimeout / 10))),
    },
    // Every error a client can meet is problem+json, those raised before a route runs too:
    // the router's (a malformed or too long URL), the HTTP parser's, and a server closing
    // (answered by the onRequest hook below instead of Fastify's own JSON 503).
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    return503OnClosing: false,
    // Path values (an orderId is opaque) may be as long as the URL may be.
    routerOptions: { maxParamLength: MAX_URL_LENGTH },
    requestIdHeader: 'x-request-id',
    trustProxy,
    genReqId: () => randomUUID(),
    // One line per request at flash-sale rates is noise; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const maxPerAddress = options.maxConnectionsPerAddress ?? 0;
  if (maxPerAddress > 0) {
    // Under a flood every refusal would be a log line: one at most every 10 s, with the count.
    let refused = 0;
    let loggedAt = 0;
    limitConnectionsPerAddress(app.server, {
      maxPerAddress,
      exempt: isTrustedPeer(trustProxy),
      refused(address) {
        deps.metrics.observeRefusedConnection();
        refused++;
        if (Date.now() - loggedAt < 10_000) return;
        loggedAt = Date.now();
        app.log.warn({ address, refused, maxPerAddress }, 'connections refused since the last such line: their address already had MAX_CONNECTIONS_PER_ADDRESS open');
        refused = 0;
      },
    });
  }
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => sendProblem(reply, problem('NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}`)));
  // Bodies are application/json only, read by Fastify's own parser: any other type is 415
  // (Fastify reads text/plain too by default).
  app.removeContentTypeParser('text/plain');
  // An answer before the body was read (413 over bodyLimit; Fastify sets Connection: close) lets
  // the client finish writing it, within bounds, before the connection closes (drain.ts).
  const drain = options.drainBeforeClose ?? DEFAULT_DRAIN;
  const lingering = new Set<Socket>();
  // Connections whose last answer said `Connection: close`.
  const closingConnections = new WeakSet<Socket>();
  // A server closing answers what still reaches it 503 (see return503OnClosing above); a URL
  // over the limit is 414 whatever route it names.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // The hooks every request passes are callback-style, not async: an async hook is a promise and
  // its settling per request, on the path whose cost is the framework's floor (`pnpm bench
  // --workloads floor`).
  app.addHook('onRequest', (req, reply, done) => {
    // A request pipelined behind one answered `Connection: close` (behind a body being drained,
    // say) is not served: its answer could not reach the client, who was told the connection ends.
    if (closingConnections.has(req.raw.socket)) {
      reply.hijack();
      return done();
    }
    if (closing) return void sendProblem(reply, problem('SERVICE_UNAVAILABLE', 'the server is shutting down; try another instance or again shortly'));
    if (req.url.length > MAX_URL_LENGTH) return void sendProblem(reply, problem('URI_TOO_LONG', `the URL is longer than ${MAX_URL_LENGTH} characters`));
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    const connection = reply.getHeader('connection');
    if (connection !== undefined && /\bclose\b/i.test(String(connection))) closingConnections.add(req.raw.socket);
    if (!req.raw.complete) drainBeforeClose(req.raw, drain, lingering);
    done(null, payload);
  });
  // Every connection. After a client hung up mid-request, Node stopped seeing any of the server's
  // keep-alive connections as idle, and a shutdown waited out their keep-alive timer (70 s, seen in
  // the queued-write deadline test): a shutdown ends the idle ones itself, and each busy one once
  // its answer is written. Whether one is busy is read from Node's own record of the answer it is
  // writing (`_httpMessage`, set from a request's arrival until its answer ends), at shutdown only:
  // a hook and a listener per request cost every request to serve the shutdown.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const answering = (socket: Socket) => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
  // Those clients have their answers: a shutdown does not wait for them. The idle ones Node closes
  // itself, or, when it no longer sees them as idle, a second later (a request already arriving
  // on one, pipelined, still gets its 503 meanwhile).
  app.addHook('preClose', async () => {
    for (const socket of lingering) socket.destroy();
    for (const socket of sockets) answering(socket)?.once('close', () => socket.end());
    setTimeout(() => {
      for (const socket of sockets) if (!answering(socket)) socket.destroy();
    }, 1_000).unref();
  });
  const limits = options.limits;
  const { byAddress, byUser } = await registerLimits(app, limits, options.sharedLimits ?? null, app.log);
  const principalOf = principalOfRequests(deps, byUser);
  if (byAddress) {
    app.addHook('onRequest', async (req, reply) => {
      if (isHealth(req.url)) return;
      // Before the body is read: a client over its rate is not waited for.
      const wait = await byAddress(req);
      if (wait > 0) return sendProblem(reply, problem('RATE_LIMITED', `${req.ip} is sending requests faster than allowed`), wait);
    });
  }
  // The in-flight cap counts a request once its body has arrived (preValidation runs after the body
  // is parsed, at once for a request without one). Counted from its head instead, clients that
  // send a head and then trickle the body held every slot while costing the service nothing, and
  // everyone else got 503; such a client is cut off by the request timeout and, with many
  // connections from one address, by the per-address connection limit.
  let inFlight = 0;
  const maxInFlight = limits?.maxInFlight;
  if (maxInFlight) {
    const leave = () => void inFlight--;
    app.addHook('preValidation', (req, reply, done) => {
      if (isHealth(req.url) || isMetrics(req.url)) return done();
      // The client went away once its body was read: nothing to count, and 'close' has fired already.
      if (reply.raw.closed) return done();
      if (inFlight >= maxInFlight) return void sendProblem(reply, problem('SERVICE_UNAVAILABLE', 'the service is overloaded; try again shortly'));
      inFlight++;
      // 'close' fires once whether the answer was sent or the client went away.
      reply.raw.once('close', leave);
      done();
    });
  }
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.observeRequest(req.method, route, reply.statusCode, answeredCode.get(req) ?? null, reply.elapsedTime / 1000);
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Order and payment service',
        version: '1.0.0',
        description: 'Orders paid from a pre-charged balance, with coupons. Errors are application/problem+json.',
      },
      servers: OPENAPI_SERVERS,
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      tags: OPENAPI_TAGS,
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // In the order of OPENAPI_TAGS: /openapi.json lists paths as they were registered.
  await app.register(orderRoutes(deps, principalOf));
  await app.register(balanceRoutes(deps, principalOf));
  await app.register(productRoutes(deps));
  await app.register(couponRoutes(deps, principalOf));
  await app.register(adminRoutes(deps, principalOf));
  await app.register(eventRoutes(deps, principalOf));
  await app.register(healthRoutes(deps, principalOf));
  if (options.benchFloorRoute) await app.register(floorRoute);
  return app;
}
