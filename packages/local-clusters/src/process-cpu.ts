import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

// The CPU a process, or a process and everything under it, has used: utime + stime from /proc/<pid>/stat (Linux; elsewhere null).

/** Milliseconds per clock tick (CLK_TCK). */
export const MS_PER_TICK = 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);

/** A /proc file's text; undefined: the process is gone, or not this machine's. */
const readProc = (file: string) => {
  try {
    return readFileSync(`/proc/${file}`, 'utf8');
  } catch {
    return undefined;
  }
};

function readStat(pid: number) {
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; f[n - 3] is field n.
  const text = readProc(`${pid}/stat`);
  const f = text?.slice(text.lastIndexOf(')') + 2).split(' ').map(Number);
  return f ? { pid, ppid: f[1]!, own: f[11]! + f[12]!, sys: f[12]!, reaped: f[13]! + f[14]! } : null;
}

/** CPU ticks a process has used so far (all its threads); null once it is gone. */
export const processTicks = (pid: number | null) => (pid === null ? null : (readStat(pid)?.own ?? null));

/** The kernel's part of them (stime): a CPU profile cannot tell a syscall's CPU from time preempted in it. */
export const processSysTicks = (pid: number | null) => (pid === null ? null : (readStat(pid)?.sys ?? null));

/** CPU ticks of a process and every process under it (ended ones through their parents' reaped time), and how many processes that is. */
export function treeTicks(root: number | null) {
  if (root === null) return null;
  const all = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => readStat(Number(n)) ?? []);
  const under = (pid: number): typeof all => all.filter((s) => s.ppid === pid).flatMap((s) => [s, ...under(s.pid)]);
  const tree = [...all.filter((s) => s.pid === root), ...under(root)];
  return tree.length === 0 ? null : { ticks: tree.reduce((t, s) => t + s.own + s.reaped, 0), processes: tree.length };
}

/** The PostgreSQL postmaster a backend process runs under, when it runs on this machine; else null. */
export function postmasterOf(backendPid: number): number | null {
  const backend = readStat(backendPid);
  return backend && /postgres|postmaster/.test(readProc(`${backend.ppid}/cmdline`) ?? '') ? backend.ppid : null;
}
