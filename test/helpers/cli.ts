import { join } from "node:path";

const BIN = join(import.meta.dir, "..", "..", "bin", "blaine.ts");

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed, when the command was given --json. */
  readonly json: any;
}

/** Runs the real `blaine` command line in a child process. */
export async function blaine(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const child = Bun.spawn(["bun", BIN, ...args], {
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

/** Polls a condition (never a fixed sleep): resolves when it holds, rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
