import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The ports the kernel hands out for outgoing connections (Linux; elsewhere the usual default).
 * A port for a server to listen on is taken below them: a port the kernel picked as free would be
 * free only until some connection, such as a route the first nodes open to the others, is given
 * it as its local port, and a node started after that, or restarted on it, could not listen.
 */
function ephemeralPorts(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    /* not Linux */
  }
  return [32768, 60999];
}

const handedOut = new Set<number>();

function listensFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port nothing listens on now, outside the range of outgoing connections' ports, not handed out before. */
export async function freePort(): Promise<number> {
  const [low] = ephemeralPorts();
  const from = 10_000;
  const to = low > from + 1_000 ? low : 65_535;
  for (let tries = 0; tries < 100; tries++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (handedOut.has(port) || !(await listensFree(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found between ${from} and ${to}`);
}
