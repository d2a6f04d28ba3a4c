import { Pool } from 'undici';
import type { EventPublisher, OutboxRecord } from '@shop/application';

export interface HttpPublisherOptions {
  /** Whole-request budget: connect, send, and the platform's answer. Keep it below the relay lease. */
  readonly timeoutMs: number;
  readonly connections: number;
}

/**
 * POSTs each event to the platform with `Idempotency-Key: <eventId>`. Any 2xx is delivered;
 * anything else, a timeout or a refused or reset connection rejects, and the relay retries.
 */
export class HttpEventPublisher implements EventPublisher {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly timeoutMs: number;

  constructor(url: string, options: HttpPublisherOptions) {
    const target = new URL(url);
    this.path = target.pathname + target.search;
    this.timeoutMs = options.timeoutMs;
    this.pool = new Pool(target.origin, {
      connections: options.connections,
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  async publish(record: OutboxRecord): Promise<void> {
    // The whole request's budget, its timer cleared once answered: an AbortSignal.timeout per event
    // fired after every delivery, long done, and made an exception object each time.
    const budget = new AbortController();
    const timer = setTimeout(() => budget.abort(new Error(`timeout: no answer from the data platform within ${this.timeoutMs} ms`)), this.timeoutMs);
    try {
      const res = await this.pool.request({
        path: this.path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': record.eventId },
        body: JSON.stringify(record.payload),
        signal: budget.signal,
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 300) {
        throw new Error(`the data platform answered HTTP ${res.statusCode}`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
