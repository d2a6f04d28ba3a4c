import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { EventPublisher, OutboxRecord } from '@shop/application';

/**
 * The local sink used when no DATA_PLATFORM_URL is set: one JSON line per event in
 * `DATA_DIR/events.ndjson`, written through the same relay and guarantees as the real platform.
 * A line is on disk (fsync) before the event counts as delivered.
 */
export class FileEventPublisher implements EventPublisher {
  readonly file: string;
  private readonly onEvent: (record: OutboxRecord) => void;
  private handle: Promise<FileHandle> | null = null;
  private queue: Promise<void> = Promise.resolve();

  constructor(dataDir: string, onEvent: (record: OutboxRecord) => void = () => undefined) {
    this.file = path.join(dataDir, 'events.ndjson');
    this.onEvent = onEvent;
  }

  publish(record: OutboxRecord): Promise<void> {
    const line = JSON.stringify(record.payload) + '\n';
    const write = this.queue.then(async () => {
      this.handle ??= mkdir(path.dirname(this.file), { recursive: true }).then(() => open(this.file, 'a'));
      const fh = await this.handle;
      await fh.appendFile(line);
      await fh.datasync();
    });
    this.queue = write.catch(() => undefined);
    return write.then(() => this.onEvent(record));
  }

  async close(): Promise<void> {
    await this.queue;
    await (await this.handle)?.close();
    this.handle = null;
  }
}
