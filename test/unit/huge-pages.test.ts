import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { adviseHugePages } from "../../lib/fs/huge-pages.ts";

const THP = "/sys/kernel/mm/transparent_hugepage/enabled";
const mode = existsSync(THP) ? /\[(\w+)\]/.exec(readFileSync(THP, "utf8"))?.[1] : undefined;
const noThp = mode === undefined || mode === "never" ? `transparent huge pages are ${mode ?? "absent"} on this kernel (${THP})` : undefined;
if (noThp) console.warn(`skipped: ${noThp}`);

/**
 * Run in a process of its own, as a backup's pool is made early in a fresh
 * process: in the test runner's long-lived heap a new SharedArrayBuffer may
 * reuse memory already faulted in 4 KiB pages, which advice cannot turn into
 * huge pages until khugepaged collapses them (a full-suite run saw none).
 */
const CHILD = `
import { readFileSync } from "node:fs";
import { adviseHugePages } from ${JSON.stringify(join(import.meta.dir, "../../lib/fs/huge-pages.ts"))};
const anonHugeKb = () => Number(/AnonHugePages:\\s+(\\d+)/.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1] ?? 0);
const before = anonHugeKb();
const memory = new SharedArrayBuffer(16 * 1024 * 1024);
const advised = adviseHugePages(memory);
const view = new Uint8Array(memory);
for (let at = 0; at < view.length; at += 4096) view[at] = at / 4096;
const hugeKb = anonHugeKb() - before;
let intact = true;
for (let at = 0; at < view.length; at += 4096) if (view[at] !== (at / 4096) % 256) intact = false;
console.log(JSON.stringify({ advised, hugeKb, intact }));
`;

describe("adviseHugePages", () => {
  test.skipIf(Boolean(noThp))("a fresh block pool's memory is backed by huge pages once advised, and its bytes are what was written", () => {
    const child = Bun.spawnSync([process.execPath, "-e", CHILD], { stdout: "pipe", stderr: "pipe" });
    expect(child.exitCode, child.stderr.toString()).toBe(0);
    const result = JSON.parse(child.stdout.toString()) as { advised: boolean; hugeKb: number; intact: boolean };
    expect(result.advised).toBe(true);
    expect(result.hugeKb).toBeGreaterThanOrEqual(2048);
    expect(result.intact).toBe(true);
  });

  test("memory too small for a whole huge page is left alone", () => {
    expect(adviseHugePages(new SharedArrayBuffer(1024 * 1024))).toBe(false);
  });
});
