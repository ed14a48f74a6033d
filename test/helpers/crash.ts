import { expect } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blaine, type CliResult } from "./cli.ts";

let markers = 0;

/**
 * A kill -9 at a named crash point (`BLAINE_CRASH_AT`, see lib/crash-point.ts),
 * with a marker file the process writes just before it kills itself: the
 * variables for the child, and `diedAt()`, the points the marker names.
 */
export function crashAt(point: string) {
  const marker = join(tmpdir(), `blaine-crash-marker-${process.pid}-${++markers}`);
  rmSync(marker, { force: true });
  return {
    env: { BLAINE_CRASH_AT: point, BLAINE_CRASH_MARKER: marker },
    /** One `name:hit` per kill at the point (none when the process ended any other way); the marker is removed. */
    diedAt(): string[] {
      if (!existsSync(marker)) return [];
      const lines = readFileSync(marker, "utf8").split("\n").filter(Boolean);
      rmSync(marker);
      return lines;
    },
  };
}

/**
 * Checks that a child run with `crashAt(point).env` died by SIGKILL at
 * `point` (`name:N`) and nowhere else: a non-zero exit alone may be an error
 * or a kill at another step.
 */
export function expectDiedAt(result: CliResult, crash: ReturnType<typeof crashAt>, point: string): void {
  expect({ exitCode: result.exitCode, diedAt: crash.diedAt() }).toEqual({ exitCode: 137, diedAt: [point] });
}

/** Runs `blaine args` killed at `point` (`name:N`); fails the test unless it died there. */
export async function blaineKilledAt(point: string, args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  const crash = crashAt(point);
  const result = await blaine(args, { cwd: options.cwd, env: { ...options.env, ...crash.env } });
  expectDiedAt(result, crash, point);
  return result;
}
