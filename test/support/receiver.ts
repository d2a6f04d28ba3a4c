import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { eventually } from './eventually.ts';

export type ReceiverMode = 'ok' | 'fail' | 'hang';

export interface ReceivedEvent {
  readonly idempotencyKey: string | undefined;
  readonly body: any;
  /** Its place on one counter shared by arrivals and acceptances: an acceptance compares to an arrival. */
  readonly at: number;
}

/**
 * A real HTTP data platform for the tests: it records every POST it accepts, and can be told to
 * answer 503, to hang without answering, or to go away entirely (connections refused).
 */
export class Receiver {
  mode: ReceiverMode = 'ok';
  /** In 'ok' mode, how long each accepted delivery waits before its answer: a slow platform. */
  delayMs = 0;
  /** Every accepted delivery, redeliveries included. */
  readonly accepted: ReceivedEvent[] = [];
  /** Every request that reached the receiver, whatever it answered. */
  requests = 0;
  /** When set, answers each request by its body instead of by `mode` (undefined: by `mode`). */
  modeFor: ((body: any) => ReceiverMode | undefined) | null = null;
  /** When set to an array, every request that reached the receiver, in arrival order, whatever it answered. */
  arrivals: ReceivedEvent[] | null = null;
  private clock = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops listening and drops every open connection: deliveries now see ECONNREFUSED. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Distinct eventIds accepted, grouped by the order they describe. */
  eventIdsByOrder(): Map<string, Set<string>> {
    const byOrder = new Map<string, Set<string>>();
    for (const e of this.accepted) {
      const id = e.body?.data?.orderId as string;
      if (!byOrder.has(id)) byOrder.set(id, new Set());
      byOrder.get(id)!.add(e.body.eventId);
    }
    return byOrder;
  }

  /** Accepted deliveries beyond the first per eventId. */
  duplicates(): number {
    return this.accepted.length - new Set(this.accepted.map((e) => e.body.eventId)).size;
  }

  /** Waits until `predicate` holds, polling; fails with `what` after `timeoutMs`. */
  until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    return eventually(predicate, what, timeoutMs, 25);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const header = req.headers['idempotency-key'];
      const idempotencyKey = Array.isArray(header) ? header[0] : header;
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any;
      if (this.modeFor !== null || this.arrivals !== null) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      this.arrivals?.push({ idempotencyKey, body, at: ++this.clock });
      const mode = this.modeFor?.(body) ?? this.mode;
      if (mode === 'hang') return; // never answers; the client's timeout must fire
      if (mode === 'fail') {
        res.writeHead(503).end('unavailable');
        return;
      }
      const accept = () => {
        this.accepted.push({ idempotencyKey, body: body ?? JSON.parse(text), at: ++this.clock });
        res.writeHead(204).end();
      };
      if (this.delayMs > 0) setTimeout(accept, this.delayMs);
      else accept();
    });
  }
}
