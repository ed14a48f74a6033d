/**
 * Exit codes are part of Blaine's contract with scripts: each one means one
 * thing, so a cron job can tell "try again with more disks" from "data damaged".
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  /** Bad usage, bad configuration, or a safety stop that refused to act. */
  usage: 2,
  /** The work is not complete: not enough space, or other disks are needed. */
  incomplete: 3,
  /** verify or restore found damaged or missing data. */
  damage: 4,
  /** Stopped by Ctrl-C (128 + SIGINT), after saying what was left. */
  interrupted: 130,
  /** Stopped by SIGTERM (128 + SIGTERM), after saying what was left. */
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the user: its message names the file or option at fault. */
export class BlaineError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = ExitCode.failure, options?: ErrorOptions) {
    super(message, options);
    this.name = "BlaineError";
    this.exitCode = exitCode;
  }
}

export class UsageError extends BlaineError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = "UsageError";
  }
}

/** Message of any thrown value, without stack noise. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The errno code of a Node/Bun fs error (`ENOENT`, `ENOSPC`, …), if any. */
export function errnoCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? String((error as { code: unknown }).code)
    : undefined;
}

/** A path or value as typed in a shell, for the commands that messages suggest (quoted only when it must be). */
export function shellWord(text: string): string {
  return /^[\w/.,:+=@%-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Whether a failure was a full file system: ENOSPC from a write, or SQLite's
 * SQLITE_FULL ("database or disk is full") when a catalog or its journal
 * could not grow.
 */
export function isOutOfSpace(error: unknown): boolean {
  const code = errnoCode(error);
  return code === "ENOSPC" || code === "SQLITE_FULL" || code === "EDQUOT" || /database or disk is full/.test(errorMessage(error));
}

/** A disk had no room left for what a command had to write there: the work stops cleanly, incomplete (exit 3). */
export class OutOfSpaceError extends BlaineError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.incomplete, options);
    this.name = "OutOfSpaceError";
  }
}
