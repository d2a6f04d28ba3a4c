import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { Client, secretBytes } from '../../../test/support/http.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';
import { redisForTests } from '../../../test/support/redis.ts';

const redisUrl = await redisForTests();

/** One request from the given loopback address (127.0.0.0/8 is all this machine), its status. */
function statusFrom(baseUrl: string, path: string, localAddress: string, token?: string): Promise<number> {
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, localAddress, agent: false, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode!));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

const USER_BURST = 6;
const IP_BURST = 20;

/**
 * Two API processes on one Redis: a client that spreads its requests over both instances still
 * gets one limit, not two.
 */
describe.skipIf(!redisUrl)('rate limits shared through Redis (REDIS_URL)', () => {
  let tdb: TestDatabase;
  let processes: ApiProcess[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    const env = {
      REDIS_URL: redisUrl!,
      // Keys of this run only: other runs may share the machine's Redis.
      REDIS_KEY_PREFIX: `test-${randomUUID()}:`,
      // Windows far longer than the test: BURST requests per BURST seconds.
      RATE_LIMIT_USER_PER_SEC: '1',
      RATE_LIMIT_USER_BURST: String(USER_BURST),
      RATE_LIMIT_IP_PER_SEC: '1',
      RATE_LIMIT_IP_BURST: String(IP_BURST),
    };
    processes = await Promise.all([startApiProcess(tdb.url, env), startApiProcess(tdb.url, env)]);
  });

  afterAll(async () => {
    const codes = await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    await tdb?.drop();
    expect(codes).toEqual(processes.map(() => 0));
  });

  test('per user: the requests accepted by both instances together stay within one limit', async () => {
    const admin = await signToken(secretBytes, { admin: true });
    const { userId, token } = await new Client(processes[0]!.url, admin).createUser(0);
    const replies = await Promise.all(
      Array.from({ length: 16 }, (_, i) => statusFrom(processes[i % 2]!.url, `/users/${userId}/balance`, '127.0.0.3', token)),
    );
    const accepted = [0, 1].map((p) => replies.filter((s, i) => s === 200 && i % 2 === p).length);
    expect(replies.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(accepted[0]! + accepted[1]!).toBe(USER_BURST); // in process, each would have taken 6: 12
  });

  test('per address: the same across instances, and probes stay exempt', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => statusFrom(processes[i % 2]!.url, '/products', '127.0.0.2')));
    expect(replies.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(replies.filter((s) => s === 200)).toHaveLength(IP_BURST);
    for (const p of processes) expect(await statusFrom(p.url, '/health/ready', '127.0.0.2')).toBe(200);
  });
});
