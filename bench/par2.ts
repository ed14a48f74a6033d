/**
 * PAR2 benchmarks, side by side with par2cmdline in one run:
 * - one large file (1 GiB; 128 MiB with --quick) at 10 % redundancy, the same
 *   slice size and recovery count for both: `blaine par2 create` vs `par2 create`;
 * - 1000 files of 10 KB, one recovery set each, in one process (as the parity
 *   stage does) vs one `par2 create` per file;
 * - repair of the large file with 1 % of its slices destroyed.
 */
import { copyFileSync, mkdirSync, openSync, closeSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createRecoverySet } from "../lib/par2/create.ts";
import { hasProgram } from "../lib/system/exec.ts";
import { syncFileSystem } from "../lib/fs/atomic.ts";
import { tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { peakMemory, timeCommand, type BenchRow } from "./measure.ts";

const BIN = join(import.meta.dir, "..", "bin", "blaine.ts");

function makeLargeFile(path: string, bytes: number): void {
  const chunk = crypto.getRandomValues(new Uint8Array(1024 * 1024));
  const fd = openSync(path, "w");
  for (let written = 0, round = 0; written < bytes; written += chunk.length, round++) {
    chunk[round % chunk.length] ^= 0x5a; // every MiB differs
    writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written));
  }
  closeSync(fd);
}

function removeSets(dir: string): void {
  for (const name of readdirSync(dir)) if (name.endsWith(".par2")) rmSync(join(dir, name));
}

export async function benchPar2(options: { workDir: string; quick?: boolean }): Promise<BenchRow[]> {
  const { workDir, quick } = options;
  const rows: BenchRow[] = [];
  if (!hasProgram("par2")) {
    console.log("par2 benchmarks skipped: par2cmdline is not installed (apt-get install par2)");
    return rows;
  }

  // One large file: same slice size and recovery count for both.
  const largeBytes = (quick ? 128 : 1024) * 1024 * 1024;
  const sliceSize = 1024 * 1024;
  const recoveryCount = Math.round(((largeBytes / sliceSize) * 10) / 100);
  const largeDir = join(workDir, "large");
  mkdirSync(largeDir, { recursive: true });
  const film = join(largeDir, "film.mkv");
  makeLargeFile(film, largeBytes);
  const label = `${largeBytes / 1024 / 1024} MiB file, 10 % (${largeBytes / sliceSize} × 1 MiB slices, ${recoveryCount} recovery)`;
  const peerCreate = timeCommand(["par2", "create", "-q", "-q", `-s${sliceSize}`, `-c${recoveryCount}`, "peer.par2", "film.mkv"], { cwd: largeDir });
  const blaineCreate = timeCommand(["bun", BIN, "par2", "create", "-s", String(sliceSize), "-c", String(recoveryCount), "set.par2", "film.mkv"], { cwd: largeDir });
  console.log(`par2 create: blaine ${blaineCreate.toFixed(2)} s, par2cmdline ${peerCreate.toFixed(2)} s`);
  rows.push({
    name: `create, ${label}`, blaine: blaineCreate, peer: peerCreate, peerName: "par2 create", unit: "s",
    ratio: peerCreate / blaineCreate, target: "≥ 3×", pass: peerCreate / blaineCreate >= 3,
  });

  // Repair with 1 % of the slices destroyed (spread over the file), from each tool's own set.
  const slices = largeBytes / sliceSize;
  const destroyed = Math.max(1, Math.round(slices / 100));
  const pristine = join(largeDir, "pristine.mkv");
  copyFileSync(film, pristine);
  const spoil = () => {
    copyFileSync(pristine, film);
    const fd = openSync(film, "r+");
    const zeros = new Uint8Array(sliceSize);
    for (let k = 0; k < destroyed; k++) writeSync(fd, zeros, 0, sliceSize, Math.floor(((k + 0.5) * slices) / destroyed) * sliceSize);
    closeSync(fd);
  };
  spoil();
  const blaineRepair = timeCommand(["bun", BIN, "par2", "repair", "set.par2"], { cwd: largeDir });
  spoil();
  const peerRepair = timeCommand(["par2", "repair", "-q", "-q", "peer.par2"], { cwd: largeDir });
  console.log(`par2 repair: blaine ${blaineRepair.toFixed(2)} s, par2cmdline ${peerRepair.toFixed(2)} s`);
  rows.push({
    name: `repair, ${largeBytes / 1024 / 1024} MiB file with ${destroyed} of ${slices} slices destroyed`, blaine: blaineRepair, peer: peerRepair,
    peerName: "par2 repair", unit: "s", ratio: peerRepair / blaineRepair, target: "> 1×", pass: peerRepair > blaineRepair,
  });
  rmSync(largeDir, { recursive: true, force: true });

  // Many small files: one set each.
  const smallDir = join(workDir, "small");
  mkdirSync(smallDir, { recursive: true });
  const count = 1000;
  const block = crypto.getRandomValues(new Uint8Array(10_000 + count));
  const names = Array.from({ length: count }, (_, i) => `f${i}.dat`);
  names.forEach((name, i) => writeFileSync(join(smallDir, name), block.subarray(i, i + 10_000)));
  const start = performance.now();
  for (const name of names) {
    await createRecoverySet(join(smallDir, `${name}.par2`), { files: [{ path: join(smallDir, name), name }], redundancy: 10, sync: false });
  }
  // Durable as the parity stage makes them: one syncfs for the batch.
  syncFileSystem(smallDir);
  const blaineSmall = (performance.now() - start) / 1000;
  removeSets(smallDir);
  // par2cmdline needs a process per set; timing a sample keeps the benchmark short. Same 1 KiB slices as Blaine chose.
  const sample = quick ? 50 : 100;
  const peerStart = performance.now();
  for (const name of names.slice(0, sample)) timeCommand(["par2", "create", "-q", "-q", "-s1024", "-r10", `${name}.par2`, name], { cwd: smallDir });
  const peerSmall = ((performance.now() - peerStart) / 1000) * (count / sample);
  rows.push({
    name: `${count} files of 10 KB, one set each (peer: ${sample} timed, ×${count / sample})`, blaine: blaineSmall, peer: peerSmall,
    peerName: "par2 create per file", unit: "s", ratio: peerSmall / blaineSmall, target: "< 1 s", pass: blaineSmall < 1,
  });
  rmSync(smallDir, { recursive: true, force: true });

  // The same in a real archive run: what the parity stage adds to `blaine run`.
  const runDir = join(workDir, "run");
  const source = join(runDir, "src");
  mkdirSync(source, { recursive: true });
  names.forEach((name, i) => writeFileSync(join(source, name), block.subarray(i, i + 10_000)));
  const timeRun = (label: string, parity: string) => {
    const disk = join(runDir, `disk-${label}`);
    const db = join(runDir, `${label}.db`);
    timeCommand(["bun", BIN, "disk", "init", disk, "--label", label, "--db", db]);
    return timeCommand(["bun", BIN, "run", "--db", db, "--dest", disk, "--reserve", "0", "--parity", parity, source]);
  };
  const withParity = timeRun("with", "10%");
  const withoutParity = timeRun("without", "off");
  const overhead = Math.max(0, withParity - withoutParity);
  rows.push({
    name: `${count} files of 10 KB in blaine run: time parity adds (10 % vs off)`, blaine: overhead, peer: withoutParity,
    peerName: "the run without parity", unit: "s", ratio: withoutParity / Math.max(overhead, 0.001), target: "< 1 s", pass: overhead < 1,
  });
  rmSync(runDir, { recursive: true, force: true });
  return rows;
}

/** The most a `blaine run` may hold, whatever the file size (issue 13). */
const RUN_MEMORY_TARGET = 256 * 1024 * 1024;

/**
 * Peak memory of `blaine run` (all defaults: 10 % parity) archiving one
 * 4 GiB file (512 MiB with --quick). The file and the disk are on the real
 * file system, not the benchmark's tmpfs: 4 GiB of data, its copy and its
 * parity would not fit in RAM beside the peers, and a tmpfs would count
 * toward nothing Blaine holds anyway. The peer column is the target.
 */
export async function benchRunMemory(options: { quick?: boolean }): Promise<BenchRow[]> {
  const bytes = (options.quick ? 512 : 4096) * 1024 * 1024;
  const dir = mkdtempSync(join(tmpdir(), "blaine-bench-memory-"));
  try {
    const source = join(dir, "src");
    mkdirSync(source);
    makeLargeFile(join(source, "film.mkv"), bytes);
    const db = join(dir, "catalog.db");
    const disk = join(dir, "disk");
    timeCommand(["bun", BIN, "disk", "init", disk, "--label", "memory", "--db", db]);
    const peak = peakMemory(["bun", BIN, "run", "--db", db, "--dest", disk, "--reserve", "0", source]);
    const mb = (n: number) => n / 1024 / 1024;
    console.log(`blaine run, one ${mb(bytes)} MiB file with parity: peak ${mb(peak).toFixed(0)} MB`);
    return [{
      name: `peak memory of blaine run, one ${mb(bytes) / 1024} GiB file, 10 % parity (defaults)`, blaine: mb(peak), peer: mb(RUN_MEMORY_TARGET),
      peerName: "target", unit: "MB", ratio: RUN_MEMORY_TARGET / peak, target: "< 256 MB", pass: peak < RUN_MEMORY_TARGET,
    }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
