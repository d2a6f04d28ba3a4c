import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { normalizeIP } from '@fastify/rate-limit';
import proxyAddr from '@fastify/proxy-addr';

/** Fastify's trustProxy as app.ts compiles it: none, a list of proxies, or a function of (address, hop). */
export type ProxyTrust = false | readonly string[] | ((address: string, hop: number) => boolean);

/**
 * Whether a TCP peer is one of the trusted proxies: it is the nearest hop (0) of every request on
 * its connections. With a hop count every peer is (the count is only sound when the instances are
 * reachable through the proxies alone); with a list, the peers it names.
 */
export function isTrustedPeer(trust: ProxyTrust): (address: string) => boolean {
  if (trust === false) return () => false;
  const trusted = typeof trust === 'function' ? trust : proxyAddr.compile([...trust]);
  return (address) => trusted(address, 0);
}

export interface ConnectionLimitOptions {
  /** Open connections allowed from one address at once; past it a new one is closed at once. */
  readonly maxPerAddress: number;
  /** Peers not limited: the trusted proxies, whose connections carry many clients' requests. */
  readonly exempt: (address: string) => boolean;
  /** Called for each connection refused, with the address it came from. */
  readonly refused: (address: string) => void;
}

/**
 * Counts the open connections of `server` by client address (an IPv4-mapped IPv6 address as the
 * IPv4 one, an IPv6 address by its /64 as the per-address rate limit does, since a client can use
 * any address inside it) and closes a connection from an address that already has
 * `maxPerAddress` open, as soon as it is accepted and before anything of it is read: one address
 * opening thousands of connections (each trickling a request) cannot take every socket and file
 * descriptor of the instance. The counts live in this process; a connection counts until it
 * closes, idle keep-alive connections included.
 *
 * The address is the TCP peer's. Behind a proxy that is the proxy, so its connections are exempt
 * (`exempt`): the proxy in front limits connections per client instead (docs/operations.md).
 */
export function limitConnectionsPerAddress(server: Server, options: ConnectionLimitOptions): { open(address: string): number } {
  const open = new Map<string, number>();
  const keyOf = (address: string) => (address.includes(':') ? normalizeIP(address) : address);
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    // Already gone (reset before it was accepted): nothing to count.
    if (address === undefined) return;
    if (options.exempt(address)) return;
    const key = keyOf(address);
    const count = open.get(key) ?? 0;
    if (count >= options.maxPerAddress) {
      socket.destroy();
      options.refused(address);
      return;
    }
    open.set(key, count + 1);
    socket.once('close', () => {
      const left = open.get(key)! - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  });
  return { open: (address) => open.get(keyOf(address)) ?? 0 };
}
