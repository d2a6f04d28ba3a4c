import { connect, type NatsConnection } from '@nats-io/transport-node';

export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * The NATS server with JetStream the tests need. Under CI it is required: unreachable fails the
 * run. On a developer's machine without one, the NATS tests are reported as skipped, loudly.
 */
export async function natsForTests(): Promise<NatsConnection | null> {
  try {
    return await connect({ servers: NATS_URL, timeout: 2_000 });
  } catch (err) {
    if (process.env.CI) throw new Error(`NATS at ${NATS_URL} is required under CI and unreachable: ${(err as Error).message}`);
    process.stderr.write(`\n!!! NATS at ${NATS_URL} is unreachable: the JetStream tests are SKIPPED (CI would fail).\n\n`);
    return null;
  }
}
