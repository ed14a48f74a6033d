import { lstatSync, rmSync } from "node:fs";
import { hostname } from "node:os";
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
    const writer = WRITER.exec(name.slice(prefix.length, -".tmp".length));
    if (!writer) continue;
    const [, pidText, host] = writer;
    const pid = Number(pidText);
    // Beyond Linux's largest pid_max the digits are no PID (a time in an older name): not a writer's temp.
    if (pid < 1 || pid > PID_MAX_LIMIT || (host !== undefined && host !== HOST)) continue;
    if (pid === process.pid || isProcessAlive(pid)) continue;
    const path = fsPath(join(dir, name));
    try {
      const info = lstatSync(path);
      if (!info.isFile() || (host === undefined && info.mtimeMs >= STARTED_MS)) continue;
      rmSync(path, { force: true });
      removed++;
      bytes += info.blocks * 512;
    } catch {
      // Gone meanwhile (another command removed it), or not ours to remove: left as it is.
    }
  }
  return { removed, bytes };
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
