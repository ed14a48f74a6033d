/**
 * Block-image benchmarks (issue 15), side by side with restic and borg on
 * the same image: a 4 GiB file (--quick: 512 MiB) that is a quarter random,
 * a quarter holes and zeros, half compressible text-like data. Every side
 * ends with `sync`. Rows: first backup vs `restic backup` and `borg create`
 * (fixed 4 MiB chunks); an incremental with rbd hints over 1 % of the
 * image vs the first backup; `--from` (full read) throughput; restore vs
 * `restic restore`; the peak memory of a first backup and of a dense
 * restore; a 1 TiB sparse image holding 256 MiB; and the catalog
 * time of a 1 TiB version (262 144 block rows) on SQLite and PostgreSQL.
 * Each comparison also gets a row of CPU seconds (information, not a
 * target), and every timed command prints its wall and CPU time with the
 * load average: on a shared machine they tell the tools from the load.
 */
import { closeSync, mkdirSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { ImageCatalog, type BlockRow } from "../lib/image/catalog/image-catalog.ts";
import { openImageSql } from "../lib/image/catalog/sql.ts";
import { WRITER_BATCH_ROWS } from "../lib/image/stages/version-writer.ts";
import { postgresMissing, startPostgres } from "../test/helpers/postgres.ts";
import { dropCaches, peakMemory, timeCommand, type BenchRow } from "./measure.ts";

const BIN = join(import.meta.dir, "..", "bin", "blaine.ts");
const MiB = 1024 * 1024;

/** CPU seconds (user + system) of the last command `run` ran. */
let lastCpuSeconds = 0;

function run(argv: readonly string[], env: Record<string, string> = {}): string {
  const result = Bun.spawnSync([...argv], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString().slice(-500)}`);
  lastCpuSeconds = Number(result.resourceUsage?.cpuTime.total ?? 0n) / 1e6;
  return result.stdout.toString();
}

/** A timed command: wall seconds (with the sync), its CPU seconds, and the machine's load average as it started. */
interface Timed {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly load: number;
}

/**
 * Wall time of a command followed by sync (what is on disk counts, not what
 * is in the page cache), printed with its CPU seconds and the load average:
 * on a shared machine the wall time moves with the load, the CPU seconds
 * much less, so the two together say whether a ratio is the tools' or the load's.
 */
function timeSynced(what: string, argv: readonly string[], env: Record<string, string> = {}): Timed {
  const load = loadavg()[0];
  const start = performance.now();
  run(argv, env);
  const cpuSeconds = lastCpuSeconds;
  run(["sync"]);
  const seconds = (performance.now() - start) / 1000;
  console.log(`${what}: ${seconds.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s CPU, load average ${load.toFixed(2)} at its start`);
  return { seconds, cpuSeconds, load };
}

/** A row comparing CPU seconds (not a target: says whether a wall-time ratio is the tools' or the machine's load). */
function cpuRow(name: string, blaine: Timed, peer: Timed, peerName: string): BenchRow {
  return { name: `${name}: CPU seconds`, blaine: blaine.cpuSeconds, peer: peer.cpuSeconds, peerName, unit: "s", ratio: peer.cpuSeconds / blaine.cpuSeconds, target: "(info)", pass: true };
}

/** The benchmark image: random, holes and zeros, text-like, in 4 MiB pieces spread through the file. */
function makeImage(path: string, size: number): void {
  writeFileSync(path, "");
  truncateSync(path, size);
  const fd = openSync(path, "r+");
  const random = Buffer.alloc(4 * MiB);
  const text = Buffer.alloc(4 * MiB);
  const zeros = Buffer.alloc(4 * MiB);
  try {
    for (let index = 0; index < size / (4 * MiB); index++) {
      const kind = index % 8;
      if (kind < 2) {
        crypto.getRandomValues(random.subarray(0, 65536));
        for (let at = 65536; at < random.length; at += 65536) crypto.getRandomValues(random.subarray(at, at + 65536));
        writeSync(fd, random, 0, random.length, index * 4 * MiB);
      } else if (kind < 6) {
        const line = `${index} a line of a log file, text-like and compressible, ${Date.now() % 977} `;
        for (let at = 0; at < text.length; at += line.length) text.write(line, at);
        writeSync(fd, text, 0, text.length, index * 4 * MiB);
      } else if (kind === 6) {
        writeSync(fd, zeros, 0, zeros.length, index * 4 * MiB); // allocated zeros
      } // kind 7: a hole
    }
  } finally {
    closeSync(fd);
  }
}

function row(name: string, blaine: number, peer: number, peerName: string, unit: string, ratio: number, target: string, pass: boolean): BenchRow {
  return { name, blaine, peer, peerName, unit, ratio, target, pass };
}

/**
 * The image suite. `restoreOnly`: the first backup and the restore against
 * restic, nothing else (no borg, incrementals, memory, 1 TiB or catalog rows).
 */
export async function benchImage(options: { workDir: string; quick?: boolean; restoreOnly?: boolean }): Promise<BenchRow[]> {
  const { workDir, quick, restoreOnly } = options;
  mkdirSync(workDir, { recursive: true });
  const size = quick ? 512 * MiB : 4096 * MiB;
  const label = quick ? "512 MiB" : "4 GiB";
  const image = join(workDir, "vm.img");
  makeImage(image, size);
  const db = join(workDir, "images.db");
  const store = join(workDir, "store");
  const blaine = (args: string[]) => ["bun", BIN, "image", ...args, "--db", db, "--store", store];
  const rows: BenchRow[] = [];

  dropCaches();
  const firstRun = timeSynced("blaine first backup", blaine(["backup", image, "vm"]));
  const first = firstRun.seconds;
  const uid = JSON.parse(run(blaine(["ls", "--json"]))).versions[0].uid as string;

  // restic: a new local repository, the password from the environment (never argv).
  const resticEnv = { RESTIC_REPOSITORY: join(workDir, "restic"), RESTIC_PASSWORD: "bench" };
  if (Bun.which("restic")) {
    run(["restic", "init"], resticEnv);
    dropCaches();
    const resticRun = timeSynced("restic backup", ["restic", "backup", "--quiet", image], resticEnv);
    const restic = resticRun.seconds;
    rows.push(row(`image first backup (${label}) vs restic backup`, first, restic, "restic", "s", restic / first, "≥ 3×", restic / first >= 3));
    rows.push(cpuRow(`image first backup (${label}) vs restic backup`, firstRun, resticRun, "restic"));
    const restoreDir = join(workDir, "restic-restore");
    dropCaches();
    const resticRestoreRun = timeSynced("restic restore", ["restic", "restore", "latest", "--target", restoreDir], resticEnv);
    const resticRestore = resticRestoreRun.seconds;
    rmSync(restoreDir, { recursive: true, force: true });
    rmSync(resticEnv.RESTIC_REPOSITORY, { recursive: true, force: true });
    const target = join(workDir, "restored.img");
    dropCaches();
    const restoreRun = timeSynced("blaine restore", blaine(["restore", uid, target, "--sparse"]));
    const restore = restoreRun.seconds;
    rmSync(target, { force: true });
    rows.push(row(`image restore (${label}) vs restic restore`, restore, resticRestore, "restic", "s", resticRestore / restore, "≥ 3×", resticRestore / restore >= 3));
    rows.push(cpuRow(`image restore (${label}) vs restic restore`, restoreRun, resticRestoreRun, "restic"));
  } else {
    console.warn("restic is not installed: its rows are skipped (Debian package restic)");
  }
  if (restoreOnly) return rows;
  if (Bun.which("borg")) {
    const repo = join(workDir, "borg");
    const borgEnv = { BORG_REPO: repo, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: "yes", BORG_RELOCATED_REPO_ACCESS_IS_OK: "yes" };
    run(["borg", "init", "--encryption=none"], borgEnv);
    dropCaches();
    const borgRun = timeSynced("borg create", ["borg", "create", "--chunker-params", "fixed,4194304", "--compression", "zstd,3", "::first", image], borgEnv);
    const borg = borgRun.seconds;
    rmSync(repo, { recursive: true, force: true });
    rows.push(row(`image first backup (${label}) vs borg create (fixed 4 MiB)`, first, borg, "borg", "s", borg / first, "≥ 3×", borg / first >= 3));
    rows.push(cpuRow(`image first backup (${label}) vs borg create (fixed 4 MiB)`, firstRun, borgRun, "borg"));
  } else {
    console.warn("borg is not installed: its row is skipped (Debian package borgbackup)");
  }

  // An incremental with rbd hints over 1 % of the image (changed blocks spread through it).
  const blocks = size / (4 * MiB);
  const changed = Math.max(1, Math.round(blocks / 100));
  const hints: { offset: number; length: number; exists: string }[] = [];
  const fd = openSync(image, "r+");
  for (let i = 0; i < changed; i++) {
    const index = Math.floor((i * blocks) / changed);
    const data = Buffer.alloc(4 * MiB);
    crypto.getRandomValues(data.subarray(0, 65536));
    writeSync(fd, data, 0, data.length, index * 4 * MiB);
    hints.push({ offset: index * 4 * MiB, length: 4 * MiB, exists: "true" });
  }
  closeSync(fd);
  const hintFile = join(workDir, "diff.json");
  writeFileSync(hintFile, JSON.stringify(hints));
  dropCaches();
  const incremental = timeSynced("blaine incremental, rbd hints over 1 %", blaine(["backup", image, "vm", "--from", uid, "--hints", hintFile])).seconds;
  rows.push(row(`image incremental, rbd hints over 1 % (${label})`, incremental, first, "first backup", "s", first / incremental, "< 5 % (≥ 20×)", incremental < first * 0.05));
  // What any command of this catalog costs before it does its work (Bun's start, modules, the catalog opened), cold
  // as the incremental was: information for the row above, whose target is a share of a 2 s backup.
  dropCaches();
  const commandStart = timeSynced("blaine ls (a command's start, cold)", blaine(["ls"])).seconds;
  rows.push(row(`image incremental, rbd hints over 1 % (${label}), less a cold \`image ls\``, incremental - commandStart, first, "first backup", "s", first / (incremental - commandStart), "(info)", true));

  dropCaches();
  const fullRead = timeSynced("blaine --from, full read", blaine(["backup", image, "vm", "--from", uid])).seconds;
  const rate = size / fullRead / 1e9;
  rows.push(row(`image --from, full read (${label})`, rate, 1, "target", "GB/s", rate, "≥ 1 GB/s", rate >= 1));

  // Peak memory of a first backup of the whole mixed image into a new store (every distinct block stored):
  // a memory target belongs here, not in a unit test whose figure moves with the machine's speed.
  const densePeak = peakMemory(["bun", BIN, "image", "backup", image, "vm", "--db", join(workDir, "peak.db"), "--store", join(workDir, "peak-store")]);
  rows.push(row(`image first backup: peak RSS (${label})`, densePeak / MiB, 300, "target", "MiB", 300 / (densePeak / MiB), "< 300 MiB", densePeak < 300 * MiB));
  // And of a dense restore of it (every block fetched, decoded, checked and written; zeros written too).
  const peakUid = JSON.parse(run(["bun", BIN, "image", "ls", "--json", "--db", join(workDir, "peak.db"), "--store", join(workDir, "peak-store")])).versions[0].uid as string;
  const restorePeak = peakMemory(["bun", BIN, "image", "restore", peakUid, join(workDir, "peak.img"), "--db", join(workDir, "peak.db"), "--store", join(workDir, "peak-store")]);
  rm(join(workDir, "peak.img"));
  rows.push(row(`image restore: peak RSS (${label})`, restorePeak / MiB, 300, "target", "MiB", 300 / (restorePeak / MiB), "< 300 MiB", restorePeak < 300 * MiB));

  // A 1 TiB sparse image holding 256 MiB of data.
  const huge = join(workDir, "huge.img");
  writeFileSync(huge, "");
  truncateSync(huge, 1024 * 1024 * MiB);
  const hugeFd = openSync(huge, "r+");
  const piece = Buffer.alloc(64 * MiB);
  for (let i = 0; i < 4; i++) {
    for (let at = 0; at < piece.length; at += 65536) crypto.getRandomValues(piece.subarray(at, at + 65536));
    writeSync(hugeFd, piece, 0, piece.length, i * 256 * 1024 * MiB);
  }
  closeSync(hugeFd);
  const hugeStore = join(workDir, "huge-store");
  const hugeArgs = ["bun", BIN, "image", "backup", huge, "huge", "--db", join(workDir, "huge.db"), "--store", hugeStore];
  dropCaches();
  const start = performance.now();
  const peak = peakMemory(hugeArgs);
  run(["sync"]);
  const hugeSeconds = (performance.now() - start) / 1000;
  rm(huge);
  rows.push(row("image 1 TiB sparse, 256 MiB of data: time", hugeSeconds, 10, "target", "s", 10 / hugeSeconds, "< 10 s", hugeSeconds < 10));
  rows.push(row("image 1 TiB sparse, 256 MiB of data: peak RSS", peak / MiB, 300, "target", "MiB", 300 / (peak / MiB), "< 300 MiB", peak < 300 * MiB));

  // The catalog's share of a 1 TiB version: 262 144 block rows written, then a version made from it.
  const sqliteTime = await catalogTime(join(workDir, "rows.db"));
  rows.push(row("image catalog, 1 TiB version (262 144 rows): SQLite", sqliteTime, 10, "target", "s", 10 / sqliteTime, "seconds (< 10 s)", sqliteTime < 10));
  const missing = postgresMissing();
  if (missing) console.warn(`PostgreSQL row skipped: ${missing}`);
  else {
    const postgres = await startPostgres();
    try {
      const pgTime = await catalogTime(await postgres.createDatabase());
      rows.push(row("image catalog, 1 TiB version (262 144 rows): PostgreSQL", pgTime, 10, "target", "s", 10 / pgTime, "seconds (< 10 s)", pgTime < 10));
    } finally {
      postgres.stop();
    }
  }
  return rows;
}

function rm(path: string): void {
  rmSync(path, { force: true });
}

/** Seconds to record a 1 TiB version's 262 144 block rows in batches as a backup does, plus a copy of its list for a version from it by INSERT … SELECT. */
async function catalogTime(db: string): Promise<number> {
  const catalog = new ImageCatalog(await openImageSql(db, { create: true }));
  try {
    const blockSize = 4 * MiB;
    const size = 1024 * 1024 * MiB;
    const base = { name: "big", snapshot: "", size, blockSize, labels: {}, date: Date.now() };
    // The rows are made before the clock starts: the catalog's time is measured, not the bench's hashing.
    const rows: BlockRow[] = [];
    for (let idx = 0; idx < size / blockSize; idx++) rows.push({ idx, hash: new Bun.CryptoHasher("sha256").update(String(idx)).digest("hex"), size: blockSize, valid: true });
    const start = performance.now();
    await catalog.createVersion({ ...base, uid: "v1", baseUid: null, inheritsUid: null });
    for (let at = 0; at < rows.length; at += WRITER_BATCH_ROWS) await catalog.writeBlocks("v1", rows.slice(at, at + WRITER_BATCH_ROWS));
    // A version from it that takes its list as its own (what a backup over a base at the end of a long chain does;
    // others inherit it, at no cost).
    await catalog.createVersion({ ...base, uid: "v2", baseUid: "v1", inheritsUid: "v1" });
    await catalog.flattenBlocks("v2");
    return (performance.now() - start) / 1000;
  } finally {
    await catalog.close();
  }
}
