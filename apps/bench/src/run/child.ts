import type { LoadResult } from './protocol.ts';

/** The child side of runInChild: one plan in by IPC, one result out, then exit. */
export function serveOnePlan<P>(name: string, run: (plan: P) => Promise<LoadResult>): void {
  process.once('message', (plan: P) => {
    run(plan).then(
      (result) => process.send!({ type: 'result', result }, () => process.exit(0)),
      (err) => {
        process.stderr.write(`${name} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
