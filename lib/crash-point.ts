/**
 * Recovery testing: `BLAINE_CRASH_AT=name` (or `name:N`) sends this process
 * SIGKILL the first (Nth) time it reaches the named step — a real kill -9 at
 * an exact place in the commit protocol. Unset, it costs one comparison.
 */
const spec = process.env.BLAINE_CRASH_AT;
const [crashName, crashCount] = spec ? [spec.split(":")[0], Number(spec.split(":")[1] ?? "1")] : [undefined, 0];
let hits = 0;

export function crashPoint(name: string): void {
  if (crashName === undefined || name !== crashName) return;
  hits++;
  if (hits >= crashCount) process.kill(process.pid, "SIGKILL");
}
