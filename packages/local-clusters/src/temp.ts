import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Set by the integration tests' global setup to a directory of this run's own: the test helpers
 * make their temporary directories in it, the teardown fails the run if any is left, then
 * removes it. Outside a test run (the benchmark), os.tmpdir().
 */
export const TEST_TMPDIR_ENV = 'ORDER_SERVICE_TEST_TMPDIR';

export function tempParent(): string {
  return process.env[TEST_TMPDIR_ENV] || os.tmpdir();
}

/** A new empty directory named `<prefix>XXXXXX`; remove it with removeTempDir. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(path.join(tempParent(), prefix));
}

export async function removeTempDir(dir: string): Promise<void> {
  // An embedded PostgreSQL may still be writing its last files as it exits.
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}

export function removeTempDirSync(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}
