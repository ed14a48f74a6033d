import { readFileSync } from "node:fs";
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

/** Runs the real `blaine` command line in a child process (as `nobody` with `asNobody`: see `whyNotAsNobody`). */
export async function blaine(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; asNobody?: boolean } = {}): Promise<CliResult> {
  const user = options.asNobody ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] : [];
  const child = Bun.spawn([...user, "bun", BIN, ...args], {
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
