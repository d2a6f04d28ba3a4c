import type { FastifyReply } from 'fastify';

/**
 * Aborted when the request's connection closes before its answer is written: the client has gone
 * (gave up, or timed out and will retry), so a write still queued for it is not worth making.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort();
  });
  return gone.signal;
}
