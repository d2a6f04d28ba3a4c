import type { EventPublisher, OutboxRecord } from '@shop/application';
import { FileEventPublisher } from './file-publisher.ts';
import { HttpEventPublisher } from './http-publisher.ts';
import { NatsEventPublisher } from './nats-publisher.ts';

export { FileEventPublisher, HttpEventPublisher, NatsEventPublisher };
export { NATS_STREAM, NATS_SUBJECT, NATS_SUBJECTS, subjectMatches } from './nats-publisher.ts';

export interface PublisherOptions {
  readonly dataDir: string;
  readonly timeoutMs: number;
  readonly connections: number;
  readonly onLocalEvent?: (record: OutboxRecord) => void;
}

/** Chooses the adapter from DATA_PLATFORM_URL's scheme: http(s):// , nats:// , or unset for the local file. */
export function createPublisher(url: string | null, options: PublisherOptions): EventPublisher {
  if (url === null) return new FileEventPublisher(options.dataDir, options.onLocalEvent);
  const scheme = new URL(url).protocol;
  if (scheme === 'http:' || scheme === 'https:') {
    return new HttpEventPublisher(url, { timeoutMs: options.timeoutMs, connections: options.connections });
  }
  if (scheme === 'nats:') return new NatsEventPublisher(url, { timeoutMs: options.timeoutMs });
  throw new Error(`DATA_PLATFORM_URL must be http://, https:// or nats://, got ${scheme}`);
}
