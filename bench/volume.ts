/**
 * Volume-archive benchmarks (issue 16). A 4 GiB image (--quick: 512 MiB)
 * on a real btrfs loop device, 128 KiB chunks (the default). Rows:
 *   - a send after 1 % of the chunks were rewritten in place, changes found
 *     from extents (FIEMAP of two reflink snapshots), against a full-read
 *     incremental of a change of the same size (the snapshot removed, so the
 *     send reads everything and compares hashes): time, and bytes read
 *     against the whole volume a wyng-style full scan reads;
 *   - a prune of a middle range of 50 sessions (of 60); left out with
 *     --only=volume-send.
 * The loop's backing file is on the root file system (the machine's memory
 * is shared, and a 4 GiB volume in a tmpfs would take too much of it), so
 * a full read reads the volume's disk as a real one would; the catalog and
 * the destination are in the bench's tmpfs, so what is measured is Blaine,
 * not this VM disk's fsync latency.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { dropCaches, type BenchRow } from "./measure.ts";

const BIN = join(import.meta.dir, "..", "bin", "blaine.ts");
const MiB = 1024 * 1024;
const CHUNK = 128 * 1024;

function run(argv: readonly string[], env: Record<string, string> = {}): string {
  const result = Bun.spawnSync([...argv], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString().slice(-500)}`);
  return result.stdout.toString();
}

function row(name: string, blaine: number, peer: number, peerName: string, unit: string, ratio: number, target: string, pass: boolean): BenchRow {
  return { name, blaine, peer, peerName, unit, ratio, target, pass };
}

/** The volume: text-like data with a random 4 MiB piece in every eight, written in 4 MiB pieces. */
function makeVolume(path: string, size: number): void {
  const fd = openSync(path, "w");
  const piece = Buffer.alloc(4 * MiB);
  try {
    for (let index = 0; index < size / (4 * MiB); index++) {
      if (index % 8 === 0) for (let at = 0; at < piece.length; at += 65536) crypto.getRandomValues(piece.subarray(at, at + 65536));
      else {
        const line = `${index} a line of a log file, text-like and compressible, ${index % 977} `;
        for (let at = 0; at < piece.length; at += line.length) piece.write(line, at);
      }
      writeSync(fd, piece, 0, piece.length, index * 4 * MiB);
    }
  } finally {
    closeSync(fd);
  }
}

/** Rewrites `count` chunks in place (new random bytes), at chunk offsets spread through the volume. */
function rewriteChunks(path: string, size: number, count: number, seed: number): void {
  const fd = openSync(path, "r+");
  const data = Buffer.alloc(CHUNK);
  const chunks = size / CHUNK;
  try {
    for (let n = 0; n < count; n++) {
      crypto.getRandomValues(data.subarray(0, 65536));
      crypto.getRandomValues(data.subarray(65536));
      const index = (n * 7919 + seed * 104_729) % chunks;
      writeSync(fd, data, 0, CHUNK, index * CHUNK);
    }
  } finally {
    closeSync(fd);
  }
}

export async function benchVolume(options: { workDir: string; quick?: boolean; sendOnly?: boolean }): Promise<BenchRow[]> {
  const size = options.quick ? 512 * MiB : 4096 * MiB;
  const label = options.quick ? "512 MiB" : "4 GiB";
  const root = mkdtempSync("/var/tmp/blaine-bench-volume-");
  const mountpoint = join(root, "mnt");
  const image = join(root, "btrfs.img");
  mkdirSync(mountpoint);
  run(["truncate", "-s", `${Math.ceil((size * 1.6) / MiB)}M`, image]);
  run(["mkfs.btrfs", "-q", "-f", image]);
  run(["mount", "-o", "loop", image, mountpoint]);
  const rows: BenchRow[] = [];
  try {
    const source = join(mountpoint, "vms");
    mkdirSync(source);
    const vm = join(source, "vm1");
    makeVolume(vm, size);
    const dest = join(options.workDir, "dest");
    mkdirSync(dest, { recursive: true });
    const db = join(options.workDir, "volumes.db");
    const volume = (args: string[], env: Record<string, string> = {}) => JSON.parse(run(["bun", BIN, "volume", ...args, "--db", db, "--json"], env));
    volume(["arch-init", "--source", source, "--dest", `internal:${dest}`]);
    volume(["add", "vm1"]);
    volume(["send"]);
    const changed = Math.round(size / CHUNK / 100);
    const timedSend = () => {
      run(["sync"]);
      dropCaches();
      const start = performance.now();
      const sent = volume(["send"]).volumes[0];
      run(["sync"]);
      return { seconds: (performance.now() - start) / 1000, bytesRead: sent.bytesRead as number, method: sent.method as string };
    };
    rewriteChunks(vm, size, changed, 1);
    const extents = timedSend();
    rewriteChunks(vm, size, changed, 2);
    // Without the snapshot the send has nothing to compare extents with: it reads the volume and compares hashes.
    rmSync(join(source, ".blaine-volume", "vm1.snap"));
    const full = timedSend();
    if (extents.method !== "extents" || full.method !== "full read") throw new Error(`unexpected send methods: ${extents.method}, ${full.method}`);
    rows.push(row(`volume send, 1 % rewritten (${label}): from extents vs full-read incremental`, extents.seconds, full.seconds, "full read", "s", full.seconds / extents.seconds, "< 5 % (≥ 20×)", extents.seconds < full.seconds * 0.05));
    // What any command of this archive costs before it does its work (Bun's start, modules, the catalog opened), cold
    // as the send was: information for the row above, whose target is a share of a full read of a fast disk.
    dropCaches();
    const listStart = performance.now();
    volume(["list"]);
    const listSeconds = (performance.now() - listStart) / 1000;
    rows.push(row(`volume send from extents (${label}), less a cold \`volume list\``, extents.seconds - listSeconds, full.seconds, "full read", "s", full.seconds / (extents.seconds - listSeconds), "(info)", true));
    rows.push(row(`volume send, 1 % rewritten (${label}): bytes read vs a full scan`, extents.bytesRead / MiB, size / MiB, "full scan", "MiB", size / extents.bytesRead, "≥ 10× less", size / extents.bytesRead >= 10));
    if (options.sendOnly) return rows;

    // 60 sessions, each with one chunk rewritten, then the 50 in the middle pruned.
    const sessions: string[] = [];
    for (let n = 0; sessions.length < 60; n++) {
      rewriteChunks(vm, size, 1, 100 + n);
      sessions.push(volume(["send"]).volumes[0].session);
    }
    const start = performance.now();
    const pruned = volume(["prune", "vm1", "--session", `${sessions[5]},${sessions[54]}`]);
    const pruneSeconds = (performance.now() - start) / 1000;
    if (pruned.pruned[0].sessions.length !== 50) throw new Error(`pruned ${pruned.pruned[0].sessions.length} sessions, not 50`);
    rows.push(row(`volume prune of 50 middle sessions (${label}, ${size / CHUNK} chunks each)`, pruneSeconds, 2, "target", "s", 2 / pruneSeconds, "< 2 s", pruneSeconds < 2));
  } finally {
    for (let attempt = 0; attempt < 20 && Bun.spawnSync(["umount", mountpoint]).exitCode !== 0; attempt++) Bun.sleepSync(200);
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
