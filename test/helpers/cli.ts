import { dlopen, FFIType } from "bun:ffi";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";

const BIN = join(import.meta.dir, "..", "..", "bin", "blaine.ts");

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed, when the command was given --json. */
  readonly json: any;
}

/**
 * Why a command cannot run as the unprivileged user `nobody` here, or
 * undefined when it can. Root reads every file whatever its mode, so a test
 * of a file Blaine cannot read runs Blaine as another user.
 */
export function whyNotAsNobody(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to switch to the user nobody";
  if (!Bun.which("setpriv")) return "needs setpriv (util-linux) to switch users";
  if (Bun.spawnSync(["id", "-u", "nobody"]).exitCode !== 0 || Bun.spawnSync(["getent", "group", "nogroup"]).exitCode !== 0)
    return "needs the user nobody and the group nogroup";
  return undefined;
}

/** The file libzstd.so.1 is loaded from here (as this process's loader finds it), or why it is not. */
function libzstdFile(): { file: string } | { why: string } {
  try {
    dlopen("libzstd.so.1", { ZSTD_versionNumber: { args: [], returns: FFIType.u32 } });
  } catch (error) {
    return { why: `libzstd.so.1 is not installed (${error instanceof Error ? error.message : String(error)})` };
  }
  const mapped = readFileSync("/proc/self/maps", "utf8").match(/\s(\/\S*libzstd\.so[^\s]*)$/m)?.[1];
  return mapped ? { file: realpathSync(mapped) } : { why: "libzstd.so.1 loaded, but /proc/self/maps does not say from where" };
}

/**
 * A child as on a system without libzstd.so.1 (Debian's libzstd1 not
 * installed): run in a mount namespace of its own with /dev/null bound over
 * the library's file, so its dlopen fails; nothing changes outside it.
 */
function withoutLibzstdPrefix(): string[] {
  const found = libzstdFile();
  if ("why" in found) throw new Error(found.why);
  return ["unshare", "--mount", "sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"', found.file];
}

/** Why a command cannot be run here as without libzstd (`withoutLibzstd`), or undefined when it can: the child's dlopen is tried. */
export function whyNotWithoutLibzstd(): string | undefined {
  const found = libzstdFile();
  if ("why" in found) return found.why;
  if (!Bun.which("unshare")) return "needs unshare (util-linux)";
  const probe = `import { dlopen } from "bun:ffi"; try { dlopen("libzstd.so.1", { ZSTD_versionNumber: { args: [], returns: "u32" } }); console.log("loaded"); } catch { console.log("refused"); }`;
  const result = Bun.spawnSync([...withoutLibzstdPrefix(), "bun", "-e", probe], { stderr: "pipe" });
  if (result.exitCode !== 0) return `unshare --mount with a bind mount failed (${result.stderr.toString().trim() || `exit ${result.exitCode}`}): needs root or user namespaces`;
  if (result.stdout.toString().trim() !== "refused") return `libzstd.so.1 still loads with ${found.file} hidden (another copy on the library path)`;
  return undefined;
}

/**
 * Runs the real `blaine` command line in a child process (as `nobody` with `asNobody`: see `whyNotAsNobody`; as
 * on a system without libzstd.so.1 with `withoutLibzstd`: see `whyNotWithoutLibzstd`).
 */
export async function blaine(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; asNobody?: boolean; withoutLibzstd?: boolean } = {},
): Promise<CliResult> {
  const user = options.asNobody ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] : [];
  const library = options.withoutLibzstd ? withoutLibzstdPrefix() : [];
  const child = Bun.spawn([...library, ...user, "bun", BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  let json: unknown;
  if (args.includes("--json")) {
    try {
      json = JSON.parse(stdout);
    } catch {
      json = undefined;
    }
  }
  return { exitCode, stdout, stderr, json };
}

/** Starts `blaine` without waiting, for kill and lock tests. */
export function spawnBlaine(args: readonly string[], options: { env?: Record<string, string> } = {}) {
  return Bun.spawn(["bun", BIN, ...args], { env: { ...process.env, ...options.env }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
}

/** Whether process `pid` is stopped (SIGSTOP, as `BLAINE_STOP_AT` does): its state in /proc is T. */
export function isStopped(pid: number): boolean {
  try {
    return /^\d+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Polls a condition (never a fixed sleep): resolves when it holds, rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
