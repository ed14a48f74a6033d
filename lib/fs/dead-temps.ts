import { lstatSync, mkdirSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fsPath, listNames } from "./byte-names.ts";
import { isProcessAlive } from "./process-alive.ts";

/**
 * Temps named by their writer, `PREFIX…PID@HOST.tmp`, so that the next
 * command writing the same target can remove those of writers killed with
 * SIGKILL (nothing else ever would) and never a live one's: a PID is only
 * asked about on the host that wrote the temp (on a shared directory the
 * same PID on another host says nothing), and a temp of another host is
 * left to that host's next command.
 */
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, "_");

/** The name of this process' temp for `prefix` (which names the target, e.g. `.out.img.blaine-restore-`). */
export function writerTempName(prefix: string): string {
  return `${prefix}${process.pid}@${HOST}.tmp`;
}

/** The writer at the end of a temp's name: `PID@HOST`, or a PID alone (names of earlier versions). */
const WRITER = /(?:^|[.-])(\d+)(?:@([A-Za-z0-9._-]+))?$/;

/** Linux's PID_MAX_LIMIT (2^22): no process has a larger PID. */
const PID_MAX_LIMIT = 4_194_304;

/** When this process started: a temp older than that was not written by a command started since. */
const STARTED_MS = performance.timeOrigin;

export interface DeadTemps {
  /** Temps removed: their writers on this host are gone. */
  readonly removed: number;
  /** The space they held (allocated: a restore's temp is as large as the image, with holes). */
  readonly bytes: number;
}

/**
 * Removes the files in `dir` named `PREFIX…PID@HOST.tmp` of this host whose
 * PID no longer runs. A name with a PID alone (written before names carried
 * the host) goes only when its PID does not run here and it is older than
 * this process. `PREFIX` names the target the temps were for.
 */
export function removeDeadTemps(dir: string, prefix: string): DeadTemps {
  return removeDeadIn(dir, prefix, "file");
}

/** `removeDeadTemps` for files or for directories. */
function removeDeadIn(dir: string, prefix: string, kind: "file" | "directory"): DeadTemps {
  let names: string[];
  try {
    // Names as Blaine's paths spell them (byte-names.ts): a repair's temp may be in a tree of names that are not UTF-8.
    names = listNames(dir);
  } catch {
    return { removed: 0, bytes: 0 };
  }
  let removed = 0;
  let bytes = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(".tmp")) continue;
    const freed = removeIfWriterGone(join(dir, name), writerOf(name.slice(prefix.length, -".tmp".length)), kind);
    if (freed === undefined) continue;
    removed++;
    bytes += freed;
  }
  return { removed, bytes };
}

/**
 * Removes the file at `path` when it is a temp named `.….PID@HOST.tmp` of
 * this host whose PID no longer runs, for a sweep that finds files rather
 * than knowing the target they were for (an archive disk's data tree). A
 * name without the host is kept: with no target's prefix before it, its
 * digits may be anything.
 */
export function removeDeadTemp(path: string): DeadTemps {
  const name = basename(path);
  const writer = name.startsWith(".") && name.endsWith(".tmp") ? writerOf(name.slice(0, -".tmp".length)) : undefined;
  const freed = writer?.host === undefined ? undefined : removeIfWriterGone(path, writer, "file");
  return freed === undefined ? { removed: 0, bytes: 0 } : { removed: 1, bytes: freed };
}

/** The writer at the end of a temp's name (before `.tmp`), when it is one. */
function writerOf(nameEnd: string): { readonly pid: number; readonly host?: string } | undefined {
  const writer = WRITER.exec(nameEnd);
  if (!writer) return undefined;
  const pid = Number(writer[1]);
  // Beyond Linux's largest pid_max the digits are no PID (a time in an older name): not a writer's temp.
  return pid < 1 || pid > PID_MAX_LIMIT ? undefined : { pid, host: writer[2] };
}

/**
 * Removes the temp at `path` when its writer is gone (see removeDeadTemps);
 * the bytes it held (a directory's own, not its contents'), undefined when
 * kept. A directory is judged only by a name with its host: a scratch
 * directory was never named otherwise.
 */
function removeIfWriterGone(path: string, writer: { readonly pid: number; readonly host?: string } | undefined, kind: "file" | "directory"): number | undefined {
  if (!writer || (writer.host !== undefined && writer.host !== HOST) || (kind === "directory" && writer.host === undefined)) return undefined;
  if (writer.pid === process.pid || isProcessAlive(writer.pid)) return undefined;
  const at = fsPath(path);
  try {
    const info = lstatSync(at);
    if (!(kind === "file" ? info.isFile() : info.isDirectory()) || (writer.host === undefined && info.mtimeMs >= STARTED_MS)) return undefined;
    rmSync(at, { force: true, recursive: kind === "directory" });
    return info.blocks * 512;
  } catch {
    // Gone meanwhile (another command removed it), or not ours to remove: left as it is.
    return undefined;
  }
}

/**
 * This writer's temp beside `target`: `.NAME.KIND…PID@HOST.tmp`, after the
 * temps of earlier writers of the same target killed with SIGKILL are
 * removed (what they were and held is `dead`). `unique` adds a random part,
 * for a target that threads of one process may write at once.
 */
export function tempBeside(target: string, kind = "", options: { readonly unique?: boolean } = {}): { readonly path: string; readonly dead: DeadTemps } {
  const directory = dirname(target);
  const prefix = `.${basename(target)}.${kind}`;
  const dead = removeDeadTemps(directory, prefix);
  const unique = options.unique ? `${Math.random().toString(36).slice(2, 8)}.` : "";
  return { path: join(directory, writerTempName(`${prefix}${unique}`)), dead };
}

/**
 * This writer's scratch directory in the system's temp directory (0700):
 * `blaine-KIND-RANDOM.PID@HOST.tmp`, after the scratch directories of KIND
 * that writers killed with SIGKILL left there are removed with what they
 * hold. Nothing may be mounted inside one: the removal would reach into the
 * mount. The caller removes its own when done.
 */
export function scratchDirectory(kind: string): string {
  const prefix = `blaine-${kind}-`;
  const dir = tmpdir();
  removeDeadIn(dir, prefix, "directory");
  const path = join(dir, writerTempName(`${prefix}${Math.random().toString(36).slice(2, 8)}.`));
  // mkdir makes it new or fails: a name someone else put in a shared /tmp is never used.
  mkdirSync(path, { mode: 0o700 });
  return path;
}
