import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

/**
 * With no AUTH_SECRET the service makes one and keeps it in DATA_DIR, so tokens printed at one
 * start still work after a restart. Production sets AUTH_SECRET.
 */
export async function loadAuthSecret(configured: string | null, dataDir: string): Promise<{ secret: Uint8Array; generated: boolean }> {
  if (configured !== null) {
    if (Buffer.byteLength(configured) < 32) throw new Error('AUTH_SECRET must be at least 32 bytes for HS256');
    return { secret: new TextEncoder().encode(configured), generated: false };
  }
  const file = path.join(dataDir, 'auth-secret');
  let value: string;
  if (existsSync(file)) {
    value = (await readFile(file, 'utf8')).trim();
  } else {
    await mkdir(dataDir, { recursive: true });
    value = randomBytes(32).toString('base64url');
    await writeFile(file, value, { mode: 0o600 });
  }
  return { secret: new TextEncoder().encode(value), generated: true };
}
