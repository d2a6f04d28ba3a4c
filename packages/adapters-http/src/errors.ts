import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { RetryLaterError } from '@shop/application';
import { isDomainError } from '@shop/domain';
import { problem, PROBLEM_CONTENT_TYPE, type Problem } from './problem.ts';
import { RateLimitedError } from './protection.ts';

/**
 * The database is down, unreachable or stuck — not this request's fault: connection failures,
 * a server shutting down, and a statement cancelled by statement_timeout (57014).
 */
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57014', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

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
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return problem('PAYLOAD_TOO_LARGE', 'the request body is larger than allowed');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const detail = e.code?.startsWith('FST_ERR_CTP') || e.name === 'SyntaxError' ? `the body is not valid JSON: ${e.message}` : (e.message ?? 'bad request');
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
