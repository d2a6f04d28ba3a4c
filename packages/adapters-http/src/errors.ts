import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { RetryLaterError } from '@shop/application';
import { isDomainError } from '@shop/domain';
import { problem, PROBLEM_CONTENT_TYPE, type HttpErrorCode, type Problem } from './problem.ts';
import { RateLimitedError } from './protection.ts';

/**
 * The longest URL (path and query string) served: what common proxies pass (nginx's 8 KiB
 * buffers), and under Node's 16 KiB limit on the request head so that a longer one still gets an
 * answer of ours. Longer is 414 URI_TOO_LONG; any path value up to it is routed.
 */
export const MAX_URL_LENGTH = 8 * 1024;

/**
 * The database is down, unreachable or stuck — not this request's fault: connection failures,
 * a server shutting down, and a statement cancelled by statement_timeout (57014).
 */
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57014', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

/**
 * Fastify's own errors that a request can meet, by code (request-errors.test.ts provokes each
 * one and lists those that cannot reach a client).
 */
const FASTIFY: Readonly<Record<string, readonly [HttpErrorCode, string]>> = {
  FST_ERR_BAD_URL: ['VALIDATION_ERROR', 'the URL is not valid: a malformed percent-encoding'],
  FST_ERR_MAX_PARAM_LENGTH: ['URI_TOO_LONG', `the URL is longer than ${MAX_URL_LENGTH} characters`],
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE', 'the request body is larger than allowed'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE', 'send the body as Content-Type: application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['VALIDATION_ERROR', 'the body is empty but Content-Type says application/json'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['VALIDATION_ERROR', 'the body is not valid JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['VALIDATION_ERROR', 'the body does not have the length Content-Length announced'],
  FST_ERR_NOT_FOUND: ['NOT_FOUND', 'no such endpoint'],
  FST_ERR_HANDLER_TIMEOUT: ['SERVICE_UNAVAILABLE', 'the request took too long; try again shortly'],
};

/** Any other client error by its status; a 4xx not listed is VALIDATION_ERROR with its own status. */
const BY_STATUS: Readonly<Partial<Record<number, HttpErrorCode>>> = {
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

function validationDetail(err: FastifyError): string {
  const where = err.validationContext ?? 'request';
  return (err.validation ?? [])
    .map((v) => {
      const path = v.instancePath ? v.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
      return `${where}${path ? '.' + path : ''}: ${v.message ?? 'is not valid'}`;
    })
    .join('; ');
}

export function toProblem(err: unknown): Problem {
  if (isDomainError(err)) return problem(err.code, err.message);
  if (err instanceof RateLimitedError) return problem('RATE_LIMITED', err.message);
  if (err instanceof RetryLaterError) return problem('SERVICE_UNAVAILABLE', err.message);
  if (hasZodFastifySchemaValidationErrors(err)) return problem('VALIDATION_ERROR', validationDetail(err as FastifyError));
  const e = err as Partial<FastifyError> & { code?: string; message?: string };
  const known = e.code ? FASTIFY[e.code] : undefined;
  if (known) return problem(known[0], known[1]);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = BY_STATUS[e.statusCode];
    if (code) return problem(code, e.message || 'the request was refused');
    const detail = e.name === 'SyntaxError' ? `the body is not valid JSON: ${e.message}` : e.message || 'bad request';
    return { ...problem('VALIDATION_ERROR', detail), status: e.statusCode };
  }
  if ((e.code && UNAVAILABLE.has(e.code)) || /timeout exceeded when trying to connect|Connection terminated|connection error|not queryable|Connection closed/i.test(e.message ?? '')) {
    return problem('SERVICE_UNAVAILABLE', 'the database is unavailable; try again shortly');
  }
  return problem('INTERNAL_ERROR', 'an unexpected error occurred; it has been logged');
}

/** The problem code each failed request was answered with, for metrics. */
export const answeredCode = new WeakMap<FastifyRequest, string>();

/** Sends `p`; 429 and 503 say when to come back (whole seconds, at least 1). */
export function sendProblem(reply: FastifyReply, p: Problem, retryAfterSeconds = 1): FastifyReply {
  answeredCode.set(reply.request, p.code);
  if (p.status === 503 || p.status === 429) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterSeconds))));
  return reply.code(p.status).type(PROBLEM_CONTENT_TYPE).serializer(JSON.stringify).send(p);
}

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const p = toProblem(err);
  if (p.status >= 500) req.log.error({ err }, 'request failed');
  return sendProblem(reply, p, err instanceof RateLimitedError ? err.retryAfterSeconds : 1);
}

/** Fastify's frameworkErrors: a URL refused by the router (bad percent-encoding, too long), before any route runs. */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply) {
  return sendProblem(reply, toProblem(err));
}

/** The request line is the first line of the packet, and it alone is over the URL limit. */
function isLongRequestLine(packet: unknown): boolean {
  if (!Buffer.isBuffer(packet)) return false;
  const end = packet.indexOf('\r\n');
  const line = end === -1 ? packet : packet.subarray(0, end);
  return line.length > MAX_URL_LENGTH && /^[A-Z-]+ \//.test(line.subarray(0, 32).toString('latin1'));
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request, answered on the socket: a
 * request whose head or whole body did not arrive in time (headersTimeout, requestTimeout: 408),
 * a request head over Node's 16 KiB (414 when the URL is what overflowed, else 431), and anything
 * that is not HTTP (400). Neither 408 nor 431 has a code of its own in the contract: both are
 * VALIDATION_ERROR with their status.
 */
export function clientErrorHandler(err: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let p: Problem;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    p = { ...problem('VALIDATION_ERROR', 'the request was not received in full in time'), status: 408 };
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    p = isLongRequestLine(err.rawPacket)
      ? problem('URI_TOO_LONG', `the URL is longer than ${MAX_URL_LENGTH} characters`)
      : { ...problem('VALIDATION_ERROR', 'the request headers are larger than allowed'), status: 431 };
  } else {
    p = problem('VALIDATION_ERROR', 'the request is not valid HTTP/1.1');
  }
  // As Node itself does: never write into a response already under way on this connection.
  const underWay = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !underWay?.headersSent) {
    const body = JSON.stringify(p);
    socket.write(
      `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}\r\n` +
        `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
