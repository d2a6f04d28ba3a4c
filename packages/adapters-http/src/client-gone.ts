import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { ClientGoneSignal } from '@shop/application';

/**
 * Aborted when the request's connection closes before its answer is written: the client has gone
 * (gave up, or timed out and will retry), so a write still queued for it is not worth making.
 *
 * Read from the answer's own state when asked, and listened to only by a write that has to queue:
 * an AbortController and a 'close' listener made for every order, refund and cancel cost each of
 * them, while only the few that wait behind a group write ever ask.
 */
export function clientGone(reply: FastifyReply): ClientGoneSignal {
  return new AnswerGone(reply.raw);
}

class AnswerGone implements ClientGoneSignal {
  private readonly res: ServerResponse;
  private listening: { listener: () => void; onClose: () => void } | null = null;
  constructor(res: ServerResponse) {
    this.res = res;
  }

  /** Closed without its answer written in full. */
  get aborted(): boolean {
    return this.res.closed && !this.res.writableFinished;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.listening) throw new Error('one abort listener at a time');
    const onClose = () => {
      this.listening = null;
      if (!this.res.writableFinished) listener();
    };
    this.listening = { listener, onClose };
    this.res.once('close', onClose);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listening?.listener !== listener) return;
    this.res.off('close', this.listening.onClose);
    this.listening = null;
  }
}
