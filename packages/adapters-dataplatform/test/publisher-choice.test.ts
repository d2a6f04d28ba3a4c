import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { createPublisher, FileEventPublisher, HttpEventPublisher, NatsEventPublisher } from '../src/index.ts';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'publisher-choice-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
const options = { dataDir, timeoutMs: 1_000, connections: 1 };

describe('DATA_PLATFORM_URL chooses the publisher', () => {
  test('unset: the local file; one http(s) URL: HTTP; one or a comma list of nats:// servers: JetStream', async () => {
    expect(createPublisher(null, options)).toBeInstanceOf(FileEventPublisher);
    const http = createPublisher('https://platform.example/events', options);
    expect(http).toBeInstanceOf(HttpEventPublisher);
    await http.close();
    expect(createPublisher('nats://127.0.0.1:4222', options)).toBeInstanceOf(NatsEventPublisher);
    expect(createPublisher('nats://n1:4222, nats://n2:4222,nats://n3:4222', { ...options, natsStreamReplicas: 3 })).toBeInstanceOf(NatsEventPublisher);
  });

  test('refuses a list that mixes schemes, several http URLs, or anything else, naming the setting', () => {
    for (const bad of ['nats://n1:4222,https://platform.example', 'https://a.example,https://b.example', 'ftp://x', 'not a url', ',']) {
      expect(() => createPublisher(bad, options), bad).toThrow(/DATA_PLATFORM_URL/);
    }
  });
});
