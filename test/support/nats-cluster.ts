import { findNatsServer, killLeftoverNatsNodes } from '@shop/local-clusters';

export { findNatsServer, freePort, startNatsCluster, type NatsCluster, type NatsNode } from '@shop/local-clusters';

// A test that failed before its cluster's stop() leaves no node running into the next file.
if (process.env.VITEST) (await import('vitest')).afterAll(killLeftoverNatsNodes);

/**
 * The binary the cluster tests need. Under CI it is required: missing fails the run. On a
 * developer's machine without it, those tests are reported as skipped, loudly.
 */
export function natsServerForTests(): string | null {
  const bin = findNatsServer();
  if (bin) return bin;
  const where = 'NATS_SERVER_BIN, the PATH, /usr/sbin or /usr/local/bin';
  if (process.env.CI) throw new Error(`nats-server is required under CI and was not found (looked in ${where})`);
  process.stderr.write(`\n!!! nats-server not found in ${where}: the JetStream cluster tests are SKIPPED (CI would fail).\n\n`);
  return null;
}
