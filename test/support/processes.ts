import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_AUTH_SECRET } from './http.ts';
import { makeTempDir, removeTempDir } from './temp.ts';

const MAIN = fileURLToPath(new URL('../../apps/api/src/main.ts', import.meta.url));

/**
 * Children still running when their test file ends: a test that failed before its stop() would
 * otherwise leave a service behind, polling and delivering long after the run.
 */
const live = new Set<ChildProcess>();
const killLeftovers = () => {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
};
// Under vitest, at the end of each test file; the benchmark (target.ts) uses this module outside it.
if (process.env.VITEST) (await import('vitest')).afterAll(killLeftovers);
process.once('exit', killLeftovers);

export interface ApiProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Lines the process printed, for diagnosing a failure. */
  readonly output: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /**
   * The log line to wait for: `ready` (the default: the database answers and is migrated) or
   * `listening` (the port is open; the database may not answer yet).
   */
  readonly until?: 'ready' | 'listening';
}

/**
 * Starts apps/api as its own OS process, exactly as an operator would, and waits until it is
 * ready (or only listens). Its DATA_DIR, unless given, is a temporary directory removed by stop().
 */
export async function startApiProcess(databaseUrl: string, env: Record<string, string> = {}, options: StartOptions = {}): Promise<ApiProcess> {
  const dataDir = env.DATA_DIR === undefined ? makeTempDir('order-service-proc-') : null;
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_SECRET: TEST_AUTH_SECRET,
      LOG_LEVEL: 'info',
      ...(dataDir ? { DATA_DIR: dataDir } : {}),
      // The tests are one client hammering on purpose (2,000 connections at once from 127.0.0.1 in
      // the coupon bursts); rate limits and the connection limit have their own tests.
      RATE_LIMIT_USER_PER_SEC: '0',
      RATE_LIMIT_IP_PER_SEC: '0',
      MAX_CONNECTIONS_PER_ADDRESS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  live.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  const removeDataDir = () => (dataDir ? removeTempDir(dataDir) : Promise.resolve());
  const until = options.until ?? 'ready';
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`API process did not start:\n${output.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === until && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        /* not a log line */
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`API process exited with ${code} before it was ${until}:\n${output.join('\n')}`));
    });
  });
  let url: string;
  try {
    url = await listening;
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await removeDataDir();
    throw err;
  }
  return {
    url,
    child,
    output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      await removeDataDir();
      return code;
    },
  };
}
