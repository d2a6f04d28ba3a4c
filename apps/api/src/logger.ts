import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** Where the logs go: stdout, or a stream in tests. */
export type LogOutput = NodeJS.WritableStream & { readonly isTTY?: boolean };

/**
 * JSON lines for machines (a pipe, a file, a container's log driver); readable, coloured lines
 * through pino-pretty when a person's terminal is attached (stdout is a TTY).
 */
export function createLogger(level: string, output: LogOutput = process.stdout): Logger {
  const options = { level, redact: ['req.headers.authorization'] };
  if (output.isTTY) {
    return pino(options, pretty({ destination: output, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
  }
  return output === process.stdout ? pino(options) : pino(options, output);
}
