import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { adviseHugePages } from "../../lib/fs/huge-pages.ts";

const THP = "/sys/kernel/mm/transparent_hugepage/enabled";
const mode = existsSync(THP) ? /\[(\w+)\]/.exec(readFileSync(THP, "utf8"))?.[1] : undefined;
const noThp = mode === undefined || mode === "never" ? `transparent huge pages are ${mode ?? "absent"} on this kernel (${THP})` : undefined;
if (noThp) console.warn(`skipped: ${noThp}`);

/** Huge pages the kernel gave this process's anonymous memory, in kB (/proc/self/smaps_rollup). */
function anonHugeKb(): number {
  return Number(/AnonHugePages:\s+(\d+)/.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1] ?? 0);
}

describe("adviseHugePages", () => {
  test.skipIf(Boolean(noThp))("a block pool's memory is backed by huge pages once advised, and its bytes are what was written", () => {
    const before = anonHugeKb();
    const memory = new SharedArrayBuffer(16 * 1024 * 1024);
    expect(adviseHugePages(memory)).toBe(true);
    const view = new Uint8Array(memory);
    for (let at = 0; at < view.length; at += 4096) view[at] = at / 4096;
    expect(anonHugeKb() - before).toBeGreaterThanOrEqual(2048);
    for (let at = 0; at < view.length; at += 4096) if (view[at] !== (at / 4096) % 256) throw new Error(`byte ${at} changed`);
  });

  test("memory too small for a whole huge page is left alone", () => {
    expect(adviseHugePages(new SharedArrayBuffer(1024 * 1024))).toBe(false);
  });
});
