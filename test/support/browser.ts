import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/**
 * The Chromium the browser test drives (Debian's `chromium` package; CHROMIUM_PATH to choose
 * another). Under CI it is required: `.ci/run` installs it when missing, and its absence fails
 * the run. On a developer's machine without one, the browser test is reported as skipped, loudly.
 */
export function chromiumForTests(): string | null {
  const path = process.env.CHROMIUM_PATH ?? CANDIDATES.find((p) => existsSync(p));
  if (path && existsSync(path)) return path;
  if (process.env.CI) throw new Error(`Chromium is required under CI and was not found (tried ${process.env.CHROMIUM_PATH ?? CANDIDATES.join(', ')})`);
  process.stderr.write('\n!!! No Chromium found: the /docs browser test is SKIPPED (CI would fail). apt-get install chromium, or set CHROMIUM_PATH.\n\n');
  return null;
}
