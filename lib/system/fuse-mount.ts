import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { BlaineError } from "../errors.ts";
import { zx } from "./exec.ts";

/**
 * FUSE mounts as the kernel sees them, and taking them down. The truth is
 * /proc/self/mountinfo, never a file of Blaine's: a mount can outlive the
 * process that made it (kill -9), and a daemon can die under a mount.
 */
export interface MountEntry {
  readonly mountpoint: string;
  /** `fuse.gocryptfs`, `fuse.securefs`, `ext4`, … */
  readonly fsType: string;
  /** What the mount says it is (Blaine sets it to `blaine:<cipher dir>`). */
  readonly source: string;
  readonly readonly: boolean;
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function listMounts(): MountEntry[] {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  const mounts: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    // id parent major:minor root mountpoint options [optional…] - fstype source superoptions
    const [left, right] = line.split(" - ");
    if (!right) continue;
    const fields = left.split(" ");
    const [fsType, source] = right.split(" ");
    mounts.push({
      mountpoint: unescapeMountField(fields[4]),
      fsType,
      source: unescapeMountField(source ?? ""),
      readonly: fields[5].split(",").includes("ro"),
    });
  }
  return mounts;
}

/** The mount at exactly `path`, if any (the last one wins when mounts are stacked). */
export function mountAt(path: string): MountEntry | undefined {
  const target = resolve(path);
  return listMounts().findLast((mount) => mount.mountpoint === target);
}

/**
 * Waits until `path` is a live FUSE mount: listed in mountinfo and
 * answering stat (a daemon still starting, or dead, fails one of the two).
 */
export async function waitUntilMounted(path: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mount = mountAt(path);
    if (mount?.fsType.startsWith("fuse")) {
      try {
        statSync(path);
        return;
      } catch {
        // Not answering yet.
      }
    }
    if (Date.now() > deadline) throw new BlaineError(`${path} was not mounted after ${Math.round(timeoutMs / 1000)} s`);
    await Bun.sleep(20);
  }
}

/** The FUSE unmount helper: fuse3's name where installed, else fuse2's. */
export const FUSERMOUNT = Bun.which("fusermount3") ? "fusermount3" : "fusermount";

/**
 * Unmounts a FUSE mount. A busy mount is retried briefly (a file closed a
 * moment ago), then detached lazily when `lazy` allows it: the kernel
 * finishes the unmount when the last file closes.
 */
export async function unmountFuse(path: string, options: { readonly lazy?: boolean } = {}): Promise<void> {
  await unmountRetrying(path, options, (lazy) => [FUSERMOUNT, "-u", ...(lazy ? ["-z"] : []), path], (stderr) => stderr.trim());
}

/**
 * The unmount loop both FUSE and kernel mounts use: `command(false)` is
 * retried while mountinfo still lists `path`, then `command(true)` (the lazy
 * detach) once when `lazy` allows it; `describe` turns stderr into the message.
 */
export async function unmountRetrying(
  path: string,
  options: { readonly lazy?: boolean },
  command: (lazy: boolean) => string[],
  describe: (stderr: string) => string,
): Promise<void> {
  const $ = await zx();
  let message = "";
  for (let attempt = 0; attempt < 10; attempt++) {
    if (!mountAt(path)) return;
    const result = await $`${command(false)}`.nothrow();
    if (result.exitCode === 0 || !mountAt(path)) return;
    message = describe(result.stderr);
    await Bun.sleep(100);
  }
  if (options.lazy) {
    const result = await $`${command(true)}`.nothrow();
    if (result.exitCode === 0 || !mountAt(path)) return;
    message = describe(result.stderr);
  }
  throw new BlaineError(`could not unmount ${path}: ${message}`);
}
