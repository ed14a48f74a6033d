/**
 * Deferred actions benchmark: applying 10 000 deferred renames to a disk
 * when it is mounted again, against `mv` of the same files in a shell loop.
 * The renames are queued the way they are in real use: the files are
 * archived onto disk A, A goes offline, the source directory is renamed and
 * a run on disk C records one deferred rename per file. What is timed is
 * mounting A (recovery, checks, then applying the queue through the crash-
 * safe DiskWriter: intents, renames, two syncfs and one transaction per
 * 1000 actions).
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveCatalog } from "../lib/archive/catalog/archive-catalog.ts";
import { mountDisks } from "../lib/archive/disk/mount-disks.ts";
import { timeCommand, type BenchRow } from "./measure.ts";

const BIN = join(import.meta.dir, "..", "bin", "blaine.ts");

function blaine(args: string[]): void {
  const result = Bun.spawnSync(["bun", BIN, ...args], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`blaine ${args.join(" ")} failed (${result.exitCode}): ${result.stderr.toString().slice(-500)}`);
}

function makeFiles(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
}

export async function benchDeferred(options: { workDir: string; quick?: boolean }): Promise<BenchRow[]> {
  const { workDir, quick } = options;
  const count = quick ? 2000 : 10_000;
  mkdirSync(workDir, { recursive: true });

  // Blaine: queue `count` renames for the offline disk A, then mount it.
  const db = join(workDir, "catalog.db");
  const diskA = join(workDir, "disk-A");
  const diskC = join(workDir, "disk-C");
  const source = join(workDir, "src");
  makeFiles(join(source, "before"), count);
  blaine(["disk", "init", diskA, "--label", "A", "--db", db]);
  blaine(["disk", "init", diskC, "--label", "C", "--db", db]);
  blaine(["run", "--db", db, "--dest", diskA, "--reserve", "0", source]);
  renameSync(join(source, "before"), join(source, "after"));
  blaine(["run", "--db", db, "--dest", diskC, "--reserve", "0", source]);
  const catalog = ArchiveCatalog.open(db, { lock: true });
  let seconds: number;
  try {
    const queued = (catalog.sqlite.query("SELECT count(*) AS n FROM deferred_actions").get() as { n: number }).n;
    if (queued !== count) throw new Error(`expected ${count} deferred renames, found ${queued}`);
    const start = performance.now();
    const mounted = await mountDisks(catalog, { required: [diskA], optional: [] }, { write: true });
    seconds = (performance.now() - start) / 1000;
    const applied = mounted.deferred.reduce((sum, result) => sum + result.applied, 0);
    for (const disk of mounted.disks) catalog.detach(disk.alias);
    if (applied !== count) throw new Error(`applied ${applied} of ${count} deferred renames`);
  } finally {
    catalog.close();
  }

  // Peer: the same renames with mv, one process per file, as a shell script would.
  const peerDir = join(workDir, "mv");
  makeFiles(join(peerDir, "before"), count);
  mkdirSync(join(peerDir, "after"));
  const script = `cd "$1" && i=0; while [ $i -lt ${count} ]; do mv "before/f$i.txt" "after/f$i.txt"; i=$((i + 1)); done; sync`;
  const peer = timeCommand(["bash", "-c", script, "bash", peerDir]);

  const ratio = peer / seconds;
  return [
    {
      name: `apply ${count} deferred renames`,
      blaine: seconds,
      peer,
      peerName: "mv in a shell loop",
      unit: "s",
      ratio,
      target: "faster than mv (> 1×)",
      pass: ratio > 1,
    },
  ];
}
