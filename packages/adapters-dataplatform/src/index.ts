import type { EventPublisher, OutboxRecord } from '@shop/application';
import { FileEventPublisher } from './file-publisher.ts';
import { HttpEventPublisher } from './http-publisher.ts';
import { NatsEventPublisher } from './nats-publisher.ts';

export { FileEventPublisher, HttpEventPublisher, NatsEventPublisher };
export { DUPLICATE_WINDOW_MS, NATS_STREAM, NATS_SUBJECT, NATS_SUBJECTS, subjectMatches } from './nats-publisher.ts';

export interface PublisherOptions {
  readonly dataDir: string;
  readonly timeoutMs: number;
  readonly connections: number;
  /** Replicas of the JetStream stream the NATS publisher creates. */
  readonly natsStreamReplicas?: number;
  readonly onLocalEvent?: (record: OutboxRecord) => void;
}

/**
 * Chooses the adapter from DATA_PLATFORM_URL: an http(s):// URL, one or a comma list of nats://
 * servers of one JetStream cluster, or unset for the local file.
 */
export function createPublisher(url: string | null, options: PublisherOptions): EventPublisher {
  if (url === null) return new FileEventPublisher(options.dataDir, options.onLocalEvent);
  const urls = url.split(',').map((u) => u.trim()).filter((u) => u !== '');
  const schemes = new Set(urls.map(schemeOf));
  if (urls.length === 1 && (schemes.has('http:') || schemes.has('https:'))) {
    return new HttpEventPublisher(urls[0]!, { timeoutMs: options.timeoutMs, connections: options.connections });
  }
  if (urls.length > 0 && schemes.size === 1 && schemes.has('nats:')) {
    return new NatsEventPublisher(urls, { timeoutMs: options.timeoutMs, replicas: options.natsStreamReplicas ?? 1 });
  }
  throw new Error(`DATA_PLATFORM_URL must be one http:// or https:// URL, or one or a comma list of nats:// servers; got "${url}"`);
}

function schemeOf(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return 'invalid';
  }
}
