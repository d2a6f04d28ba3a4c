import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** How much of an unread request body is read and discarded after an answer that closes the connection. */
export interface DrainBounds {
  /** Body bytes read after the answer; past them the connection is cut. */
  readonly maxBytes: number;
  /** How long after the answer; then the connection is cut. */
  readonly maxMs: number;
}

/** The request whose body is read before its socket closes, by socket (whose destroySoon is replaced). */
const draining = new WeakMap<Socket, IncomingMessage>();

/**
 * Enough for the 2–3 MB bodies that clients were seen sending over the 64 KiB limit, read from a
 * client on a slow link; an endless body costs at most this much before it is cut.
 */
export const DEFAULT_DRAIN: DrainBounds = { maxBytes: 10 * 1024 * 1024, maxMs: 5_000 };

/**
 * Lingering close (RFC 9112 §9.6). An answer sent before the request body was read (413 over the
 * body limit, mostly) carries `Connection: close`, and Node then ends the socket and destroys it
 * as soon as the answer is flushed. Destroying a socket with unread bytes in it, or that bytes
 * still reach, makes the kernel send a reset: a client still writing its body gets EPIPE or
 * ECONNRESET, and may lose the answer that was already in its receive buffer.
 *
 * So for such a request the socket's destroySoon (what Node calls when the answer that closes the
 * connection is finished) only ends the writing side, which sends the answer and then a FIN, and
 * goes on reading the body, discarding it, until the body ends or the client closes its side, or
 * `bounds` run out; then it destroys the socket. Nothing is kept: a client sending an endless
 * body holds the socket for at most `bounds`.
 *
 * socket.destroySoon is Node's own (net.Socket), not a documented API: body-limit.test.ts shows
 * whether a Node upgrade still calls it this way.
 *
 * Does nothing when the body is already read; call it before the answer is finished. When the
 * connection is kept alive instead, Node reads the rest of the body itself and this never acts.
 * `lingering` holds the sockets being drained, for a shutdown.
 */
export function drainBeforeClose(req: IncomingMessage, bounds: DrainBounds, lingering: Set<Socket>): void {
  const socket = req.socket as Socket | null;
  if (req.complete || !socket || socket.destroyed) return;
  // A connection kept alive may carry several such requests; the last one is the one closing it.
  const replaced = draining.has(socket);
  draining.set(socket, req);
  if (replaced) return;
  const destroySoon = socket.destroySoon;
  socket.destroySoon = function drainThenDestroy(this: Socket) {
    const req = draining.get(socket)!;
    // The body ended while the answer went out: nothing left to read.
    if (req.complete) return destroySoon.call(this);
    lingering.add(socket);
    let read = 0;
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData);
      socket.destroy();
    };
    const onData = (chunk: Buffer | string) => {
      read += chunk.length;
      if (read > bounds.maxBytes) done();
    };
    const timer = setTimeout(done, bounds.maxMs);
    // Node's HTTP parser goes on passing the body to the request; reading it here discards it.
    req.on('data', onData);
    req.once('end', done);
    req.once('error', done);
    socket.once('end', done);
    socket.once('close', () => {
      clearTimeout(timer);
      lingering.delete(socket);
    });
    this.end();
  };
}
