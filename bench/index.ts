/**
 * `bun run bench [--quick] [--only=archive|par2|par2-memory|par2-many|deferred|image|image-restore|volume|volume-send]`: every benchmark,
 * side by side with its peer tool in one run, printed as one table of ratios (image-restore: the image backup and restore
 * rows against restic alone; volume-send: the volume rows but the prune's). Exit 1 if a target is missed.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { benchArchive } from "./archive.ts";
import { benchDeferred } from "./deferred.ts";
import { benchImage } from "./image.ts";
import { benchPar2, benchPar2Large, benchPar2ManyRecovery, benchRunMemory } from "./par2.ts";
import { benchVolume } from "./volume.ts";
import { printRows, type BenchRow } from "./measure.ts";

const quick = process.argv.includes("--quick");
const only = process.argv.find((arg) => arg.startsWith("--only="))?.slice(7);

/** A tmpfs when root (the tools, not this VM's disk, are measured), else a temp dir. */
function workArea(): { dir: string; cleanup: () => void; kind: string } {
  const dir = mkdtempSync("/tmp/blaine-bench-");
  if (process.getuid?.() === 0) {
    const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=12g", "tmpfs", dir]).exitCode === 0;
    if (mounted) return { dir, kind: "tmpfs", cleanup: () => { Bun.spawnSync(["umount", "-l", dir]); rmSync(dir, { recursive: true, force: true }); } };
  }
  return { dir, kind: "directory on the root file system", cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const area = workArea();
console.log(`Benchmarks${quick ? " (quick)" : ""} in ${area.dir} (${area.kind})\n`);
const rows: BenchRow[] = [];
const workDir = (name: string) => {
  const dir = join(area.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
};
try {
  if (!only || only === "archive") rows.push(...(await benchArchive({ workDir: join(area.dir, "archive"), quick })));
  if (!only || only === "par2") rows.push(...(await benchPar2({ workDir: workDir("par2"), quick })));
  if (!only || only === "par2" || only === "par2-many") rows.push(...benchPar2ManyRecovery({ workDir: workDir("par2"), quick }));
  if (!only || only === "par2" || only === "par2-memory") rows.push(...(await benchPar2Large({ workDir: workDir("par2"), quick })));
  if (!only || only === "par2" || only === "par2-memory") rows.push(...(await benchRunMemory({ quick })));
  if (!only || only === "deferred") rows.push(...(await benchDeferred({ workDir: workDir("deferred"), quick })));
  if (!only || only === "image" || only === "image-restore") rows.push(...(await benchImage({ workDir: workDir("image"), quick, restoreOnly: only === "image-restore" })));
  if (!only || only === "volume" || only === "volume-send") rows.push(...(await benchVolume({ workDir: workDir("volume"), quick, sendOnly: only === "volume-send" })));
} finally {
  area.cleanup();
}
console.log("");
printRows(rows);
process.exitCode = rows.every((row) => row.pass) ? 0 : 1;
