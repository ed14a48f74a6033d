/** Shared benchmark plumbing: timing external commands, peak memory, result rows. */

export interface BenchRow {
  readonly name: string;
  /** Blaine's measurement and the peer's, in `unit`. */
  readonly blaine: number;
  readonly peer: number;
  readonly peerName: string;
  readonly unit: string;
  /** How many times better Blaine is (peer time / Blaine time, or peer rate / Blaine rate as fits). */
  readonly ratio: number;
  readonly target: string;
  readonly pass: boolean;
}

/** Runs a command and returns its wall time in seconds; throws (with stderr) if it fails. */
export function timeCommand(argv: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): number {
  const start = performance.now();
  const result = Bun.spawnSync([...argv], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdout: "pipe", stderr: "pipe" });
  const seconds = (performance.now() - start) / 1000;
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString().slice(-500)}`);
  return seconds;
}

/** Runs a command under GNU time and returns its peak resident memory in bytes. */
export function peakMemory(argv: readonly string[]): number {
  return timeAndPeak(argv).peak;
}

/**
 * Runs a command under GNU time (in `cwd`): its wall and CPU seconds and peak
 * resident memory in bytes; throws (with stderr) unless it exits with one of
 * `exits` (0 alone by default).
 */
export function timeAndPeak(
  argv: readonly string[], options: { cwd?: string; exits?: readonly number[] } = {},
): { seconds: number; cpu: number; peak: number } {
  const result = Bun.spawnSync(["/usr/bin/time", "-f", "%e %U %S %M", ...argv], { cwd: options.cwd, stdout: "pipe", stderr: "pipe" });
  const stderr = result.stderr.toString();
  const [seconds, user, system, kilobytes] = stderr.trim().split("\n").pop()!.split(" ").map(Number);
  // GNU time exits with the command's code, and says so on a line of its own.
  if (!(options.exits ?? [0]).includes(result.exitCode) || !(kilobytes > 0)) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${stderr.slice(-500)}`);
  return { seconds, cpu: user + system, peak: kilobytes * 1024 };
}

/** Drops the page cache where we may (root), so peers and Blaine start equal. */
export function dropCaches(): void {
  Bun.spawnSync(["sync"]);
  try {
    require("node:fs").writeFileSync("/proc/sys/vm/drop_caches", "3");
  } catch {
    // Not root: every run reads from the page cache alike.
  }
}

export function printRows(rows: readonly BenchRow[]): void {
  const header = ["benchmark", "blaine", "peer", "ratio", "target", "ok"];
  const lines = rows.map((row) => [
    row.name,
    `${row.blaine.toFixed(3)} ${row.unit}`,
    `${row.peer.toFixed(3)} ${row.unit} (${row.peerName})`,
    `${row.ratio.toFixed(2)}×`,
    row.target,
    row.pass ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const line of lines) console.log(fmt(line));
}
