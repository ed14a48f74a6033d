import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";

/**
 * Recovery testing: `BLAINE_CRASH_AT=name` (or `name:N`) sends this process
 * SIGKILL the first (Nth) time it reaches the named step — a real kill -9 at
 * an exact place in the commit protocol. With `BLAINE_CRASH_MARKER=FILE` it
 * first appends `name:N` to FILE (fsynced), so a test can tell a kill at that
 * step from a process that died anywhere else. `BLAINE_STOP_AT=name[:N]`
 * sends it SIGSTOP there instead, so a test can change the world at that
 * moment (fill the disk from outside) and then SIGCONT or SIGKILL it. Unset,
 * each costs one comparison. Each thread counts its own hits (the copy
 * workers load this module again).
 */
function parse(spec: string | undefined): { name: string | undefined; count: number } {
  return spec ? { name: spec.split(":")[0], count: Number(spec.split(":")[1] ?? "1") } : { name: undefined, count: 0 };
}

const crash = parse(process.env.BLAINE_CRASH_AT);
const stop = parse(process.env.BLAINE_STOP_AT);
let crashHits = 0;
let stopHits = 0;

export function crashPoint(name: string): void {
  if (name === crash.name && ++crashHits >= crash.count) {
    markCrash(`${name}:${crashHits}`);
    process.kill(process.pid, "SIGKILL");
  }
  // Once only: the test resumes the process and lets it run to its end.
  if (name === stop.name && ++stopHits === stop.count) process.kill(process.pid, "SIGSTOP");
}

/** Appends where this process dies to `BLAINE_CRASH_MARKER`, on the disk before the kill. */
function markCrash(point: string): void {
  const marker = process.env.BLAINE_CRASH_MARKER;
  if (!marker) return;
  const fd = openSync(marker, "a");
  try {
    writeSync(fd, `${point}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
