import { Pool } from 'undici';

/**
 * The HTTP side of the load: one keep-alive pool per instance, each request to the next instance
 * in turn (a retry lands on the other one, as behind a load balancer), and what a client can tell
 * from a failure: refused (the request never reached a service), or reached and unanswered.
 */

export interface Reply {
  readonly status: number;
  /** The problem's `code` for a 4xx/5xx answer; '' otherwise. */
  readonly code: string;
  readonly text: string;
  /** The idempotent-replayed header. */
  readonly replayed: string | undefined;
}

/** `refused`: never reached a service, so it did nothing. `no answer` and `timeout`: it may have. */
export class TransportError extends Error {
  readonly outcome: 'refused' | 'no answer' | 'timeout';
  readonly code: string;

  constructor(outcome: 'refused' | 'no answer' | 'timeout', code: string) {
    super(`${outcome} (${code})`);
    this.outcome = outcome;
    this.code = code;
  }

  get reached(): boolean {
    return this.outcome !== 'refused';
  }

  get label(): string {
    return this.outcome === 'refused' ? 'refused' : `${this.outcome} (${this.code})`;
  }
}

/** How long a client waits for an answer: longer than any stall the faults cause. */
const ANSWER_TIMEOUT_MS = 30_000;

export function transportError(err: unknown): TransportError {
  const codes: string[] = [];
  for (let c: any = err; c; c = c.cause) {
    if (typeof c.code === 'string') codes.push(c.code);
    for (const inner of Array.isArray(c.errors) ? c.errors : []) if (typeof inner?.code === 'string') codes.push(inner.code);
  }
  if (codes.includes('ECONNREFUSED') || codes.includes('UND_ERR_CONNECT_TIMEOUT')) return new TransportError('refused', codes[0]!);
  if (codes.some((c) => c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT')) return new TransportError('timeout', codes[0]!);
  return new TransportError('no answer', codes[0] ?? (err instanceof Error ? err.message : String(err)));
}

export interface RequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly authorization?: string;
  readonly body?: unknown;
  readonly key?: string;
}

export class Instances {
  private readonly pools: Pool[];
  private next = 0;

  constructor(urls: readonly string[], connectionsEach: number) {
    this.pools = urls.map((url) => new Pool(url, { connections: connectionsEach, keepAliveTimeout: 30_000, headersTimeout: ANSWER_TIMEOUT_MS, bodyTimeout: ANSWER_TIMEOUT_MS }));
  }

  /** Sends to the next instance in turn; throws a TransportError when no HTTP answer came. */
  async send(spec: RequestSpec): Promise<Reply> {
    const pool = this.pools[this.next++ % this.pools.length]!;
    const headers: Record<string, string> = {};
    if (spec.authorization) headers.authorization = spec.authorization;
    if (spec.key) headers['idempotency-key'] = spec.key;
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const res = await pool.request({
        method: spec.method,
        path: spec.path,
        headers,
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
      });
      const text = await res.body.text();
      const replayed = res.headers['idempotent-replayed'];
      return {
        status: res.statusCode,
        code: res.statusCode < 400 ? '' : (parse(text)?.code ?? 'NOT_A_PROBLEM'),
        text,
        replayed: Array.isArray(replayed) ? replayed[0] : replayed,
      };
    } catch (err) {
      throw transportError(err);
    }
  }

  /** Drops every open request and connection. */
  destroy(): Promise<void> {
    return Promise.all(this.pools.map((p) => p.destroy())).then(() => undefined);
  }

  close(): Promise<void> {
    return Promise.all(this.pools.map((p) => p.close())).then(() => undefined);
  }
}

export function parse(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
