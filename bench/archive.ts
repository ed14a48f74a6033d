/**
 * Archive benchmarks, side by side with the peer tools in one run:
 * - large files: blaine run vs `dc3dd hash=sha1` and vs `cp` + `sha1sum`;
 * - 50 000 small files: initial archive and unchanged re-run vs `rsync -a`;
 * - peak memory of a run over 200 000 files.
 * Source and destinations share one file system (a tmpfs when root, so the
 * numbers measure the tools, not this VM's disk).
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { peakMemory, timeCommand, type BenchRow } from "./measure.ts";

const BIN = join(import.meta.dir, "..", "bin", "blaine.ts");

function blaineArgs(workDir: string, name: string, source: string): { init: string[]; run: string[] } {
  const db = join(workDir, `${name}.db`);
  const disk = join(workDir, `${name}-disk`);
  return {
    init: ["bun", BIN, "disk", "init", disk, "--label", name, "--db", db],
    // The peers make no parity: like is compared with like (bench/par2.ts measures what parity adds).
    run: ["bun", BIN, "run", "--db", db, "--dest", disk, "--reserve", "0", "--parity", "off", source],
  };
}

function makeSmallFiles(root: string, count: number, minBytes: number, maxBytes: number): number {
  let bytes = 0;
  const block = crypto.getRandomValues(new Uint8Array(maxBytes + 4096));
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true });
    const size = minBytes + ((i * 2654435761) % (maxBytes - minBytes + 1));
    const offset = i % 4096;
    writeFileSync(join(dir, `f${i}.dat`), block.subarray(offset, offset + size));
    bytes += size;
  }
  return bytes;
}

function best(times: number, run: () => number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < times; i++) min = Math.min(min, run());
  return min;
}

export async function benchArchive(options: { workDir: string; quick?: boolean }): Promise<BenchRow[]> {
  const { workDir, quick } = options;
  const rows: BenchRow[] = [];

  // Large files.
  const largeCount = 4;
  const largeSize = (quick ? 32 : 256) * 1024 * 1024;
  const large = join(workDir, "large");
  mkdirSync(large, { recursive: true });
  const chunk = crypto.getRandomValues(new Uint8Array(1024 * 1024));
  for (let f = 0; f < largeCount; f++) {
    const parts: Uint8Array[] = [];
    for (let m = 0; m < largeSize / chunk.length; m++) {
      chunk[m % chunk.length] ^= f + 1;
      parts.push(chunk.slice());
    }
    writeFileSync(join(large, `movie-${f}.mkv`), Buffer.concat(parts));
  }
  const files = Array.from({ length: largeCount }, (_, f) => join(large, `movie-${f}.mkv`));
  const totalMiB = (largeCount * largeSize) / 1024 / 1024;
  const rounds = quick ? 1 : 2;
  let attempt = 0;
  const blaineLarge = best(rounds, () => {
    const args = blaineArgs(workDir, `large${attempt++}`, large);
    timeCommand(args.init);
    const seconds = timeCommand(args.run);
    rmSync(join(workDir, `large${attempt - 1}-disk`), { recursive: true, force: true });
    return seconds;
  });
  const dc3dd = best(rounds, () => {
    const out = join(workDir, "dc3dd-out");
    mkdirSync(out, { recursive: true });
    const start = performance.now();
    for (const file of files) timeCommand(["dc3dd", `if=${file}`, `of=${join(out, file.split("/").pop()!)}`, "hash=sha1", "nwspc=on", "log=/dev/null"]);
    const seconds = (performance.now() - start) / 1000;
    rmSync(out, { recursive: true, force: true });
    return seconds;
  });
  const cpSha = best(rounds, () => {
    const out = join(workDir, "cp-out");
    mkdirSync(out, { recursive: true });
    const start = performance.now();
    timeCommand(["cp", "-a", ...files, out]);
    timeCommand(["sha1sum", ...files.map((file) => join(out, file.split("/").pop()!))]);
    const seconds = (performance.now() - start) / 1000;
    rmSync(out, { recursive: true, force: true });
    return seconds;
  });
  const rate = (seconds: number) => totalMiB / seconds;
  rows.push({
    name: `large files ${largeCount}×${largeSize / 1024 / 1024} MiB, initial archive`,
    blaine: rate(blaineLarge), peer: rate(dc3dd), peerName: "dc3dd hash=sha1", unit: "MiB/s",
    ratio: dc3dd / blaineLarge, target: "≥ 2×", pass: dc3dd / blaineLarge >= 2,
  });
  rows.push({
    name: `large files ${largeCount}×${largeSize / 1024 / 1024} MiB, initial archive`,
    blaine: rate(blaineLarge), peer: rate(cpSha), peerName: "cp + sha1sum", unit: "MiB/s",
    ratio: cpSha / blaineLarge, target: "> 1×", pass: cpSha > blaineLarge,
  });
  rmSync(large, { recursive: true, force: true });

  // Small files.
  const smallCount = quick ? 5_000 : 50_000;
  const small = join(workDir, "small");
  makeSmallFiles(small, smallCount, 1000, 8000);
  // Initial archives alternate, each onto an empty disk or directory, best of five on both sides:
  // one run of either tool swung by ±15 % on this machine, run to run.
  const smallRounds = quick ? 1 : 5;
  const rsyncTarget = join(workDir, "rsync-out");
  let smallArgs = blaineArgs(workDir, "small0", small);
  let blaineInitial = Number.POSITIVE_INFINITY;
  let rsyncInitial = Number.POSITIVE_INFINITY;
  for (let round = 0; round < smallRounds; round++) {
    if (round > 0) {
      rmSync(join(workDir, `small${round - 1}-disk`), { recursive: true, force: true });
      rmSync(join(workDir, `small${round - 1}.db`), { force: true });
      rmSync(rsyncTarget, { recursive: true, force: true });
      smallArgs = blaineArgs(workDir, `small${round}`, small);
    }
    timeCommand(smallArgs.init);
    blaineInitial = Math.min(blaineInitial, timeCommand(smallArgs.run));
    rsyncInitial = Math.min(rsyncInitial, timeCommand(["rsync", "-a", `${small}/`, `${rsyncTarget}/`]));
  }
  const blaineAgain = best(smallRounds, () => timeCommand(smallArgs.run));
  const rsyncAgain = best(smallRounds, () => timeCommand(["rsync", "-a", `${small}/`, `${rsyncTarget}/`]));
  rows.push({
    name: `${smallCount} small files (1–8 KB), initial archive`,
    blaine: blaineInitial, peer: rsyncInitial, peerName: "rsync -a", unit: "s",
    ratio: rsyncInitial / blaineInitial, target: "≥ 1×", pass: rsyncInitial >= blaineInitial,
  });
  rows.push({
    name: `${smallCount} small files, unchanged re-run`,
    blaine: blaineAgain, peer: rsyncAgain, peerName: "rsync -a (nothing to do)", unit: "s",
    ratio: rsyncAgain / blaineAgain, target: "≥ 1×", pass: rsyncAgain >= blaineAgain,
  });
  rmSync(small, { recursive: true, force: true });
  rmSync(rsyncTarget, { recursive: true, force: true });

  // Peak memory over many files.
  const manyCount = quick ? 20_000 : 200_000;
  const many = join(workDir, "many");
  makeSmallFiles(many, manyCount, 10, 200);
  const manyArgs = blaineArgs(workDir, "many", many);
  timeCommand(manyArgs.init);
  const peak = peakMemory(manyArgs.run);
  const limit = 300 * 1024 * 1024;
  rows.push({
    name: `peak memory, initial archive of ${manyCount} files`,
    blaine: peak / 1024 / 1024, peer: limit / 1024 / 1024, peerName: "limit", unit: "MiB",
    ratio: limit / peak, target: "< 300 MiB", pass: peak < limit,
  });
  rmSync(many, { recursive: true, force: true });
  return rows;
}
