/**
 * The parity stage in real runs: one PAR2 set per content under
 * .blaine/parity, surviving renames and hardlinked duplicates, removed with
 * the content's last path, recorded only once durable (kill -9 in between is
 * made good by the next run), checked and repaired by verify, used by
 * restore, and readable by stock par2cmdline.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, linkSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { hasProgram } from "../lib/system/exec.ts";
import { ParityStore } from "../lib/archive/disk/parity-store.ts";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, seededBytes, snapshotTree } from "./helpers/fixture.ts";

setDefaultTimeout(120_000);

const hasPar2 = hasProgram("par2");
if (!hasPar2) console.log("skipped stock-par2cmdline checks of Blaine's parity: par2 is not installed (apt-get install par2)");

let env: ArchiveEnv | undefined;
let multi: MultiDiskEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
  multi?.cleanup();
  multi = undefined;
});

function paritySets(disk: string): { hash: string; size: number; recovery_slices: number }[] {
  const db = new Database(join(disk, ".blaine", "catalog.db"), { readonly: true });
  try {
    return db.query("SELECT hash, size, recovery_slices FROM parity_sets ORDER BY hash").all() as { hash: string; size: number; recovery_slices: number }[];
  } finally {
    db.close();
  }
}

function parityFiles(disk: string): string[] {
  const root = join(disk, ".blaine", "parity");
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((shard) => readdirSync(join(root, shard)).map((name) => join(root, shard, name))).sort();
}

function indexOf(disk: string, hash: string): string {
  const hex = hash.split(":")[1];
  return join(disk, ".blaine", "parity", hex.slice(0, 2), `sha1-${hex}.par2`);
}

function damage(path: string, at: number, length: number): void {
  const fd = openSync(path, "r+");
  writeSync(fd, new Uint8Array(length).fill(0x5a), 0, length, at);
  closeSync(fd);
}

const film = seededBytes(600_000, 1);
const tree = () => ({ movies: { "film.mkv": film, "notes.txt": seededBytes(10_000, 2), "empty.txt": "" }, other: { "dup.mkv": film } });
/** The tree archived; other/dup.mkv has film.mkv's mtime (as cp -p leaves it), so the two share an inode on the disk (issue 12.11). */
async function parityEnv(): Promise<ArchiveEnv> {
  const made = await archiveEnv(tree());
  expect(Bun.spawnSync(["touch", "-r", join(made.source, "movies", "film.mkv"), join(made.source, "other", "dup.mkv")]).exitCode).toBe(0);
  return made;
}

describe("parity stage", () => {
  test("one set per content, recorded, readable by stock par2cmdline; renames and duplicates need no new parity", async () => {
    env = await parityEnv();
    const first = await env.run();
    expect(first.exitCode).toBe(0);
    const sets = paritySets(env.disk);
    expect(sets.length).toBe(2); // film (twice) and notes; the empty file needs none
    expect(sets.map((s) => s.size).sort((a, b) => a - b)).toEqual([10_000, 600_000]);
    const files = parityFiles(env.disk);
    expect(files.length).toBe(4); // an index and one vol file each
    const before = Object.fromEntries(files.map((f) => [f, statSync(f).mtimeMs]));

    const filmSet = sets.find((s) => s.size === 600_000)!;
    if (hasPar2) {
      const location = env.onDisk("movies/film.mkv");
      const stock = Bun.spawnSync(["par2", "verify", "-q", "-B", dirname(location), indexOf(env.disk, filmSet.hash), location], { stdout: "pipe", stderr: "pipe" });
      expect(stock.stdout.toString()).toContain("All files are correct");
      expect(stock.exitCode).toBe(0);
    }

    renameSync(join(env.source, "movies", "film.mkv"), join(env.source, "movies", "renamed.mkv"));
    linkSync(join(env.source, "movies", "notes.txt"), join(env.source, "other", "notes-link.txt"));
    const second = await env.run();
    expect(second.exitCode).toBe(0);
    expect(second.json.renamed).toBe(1);
    expect(paritySets(env.disk)).toEqual(sets);
    expect(Object.fromEntries(parityFiles(env.disk).map((f) => [f, statSync(f).mtimeMs]))).toEqual(before);
    expect((await env.verify()).exitCode).toBe(0);
  }, 60_000);

  test.skipIf(!hasPar2)("the README recipe: stock par2 repair -B repairs an archived file in place; its a.mkv.1 backup must go", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    const notesSet = paritySets(env.disk).find((s) => s.size === 10_000)!;
    const location = env.onDisk("movies/notes.txt");
    damage(location, 100, 50);
    const stock = Bun.spawnSync(["par2", "repair", "-q", "-B", dirname(location), indexOf(env.disk, notesSet.hash), location], { stdout: "pipe", stderr: "pipe" });
    expect(stock.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(location), Buffer.from(seededBytes(10_000, 2)))).toBe(0);
    // par2cmdline keeps the damaged original beside the repaired file: verify sees a file in no catalog.
    expect(existsSync(`${location}.1`)).toBe(true);
    const before = await env.verify();
    expect(before.exitCode).toBe(4);
    expect(before.json.disks[0].unexpected).toEqual([`${join(env.source, "movies", "notes.txt")}.1`]);
    rmSync(`${location}.1`);
    expect((await env.verify()).exitCode).toBe(0);
  }, 60_000);

  test("deleting the last path of a content removes its parity; deleting one of two keeps it", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    rmSync(join(env.source, "other", "dup.mkv"));
    expect((await env.run()).exitCode).toBe(0);
    expect(paritySets(env.disk).length).toBe(2);
    rmSync(join(env.source, "movies", "film.mkv"));
    expect((await env.run()).exitCode).toBe(0);
    expect(paritySets(env.disk).map((s) => s.size)).toEqual([10_000]);
    expect(parityFiles(env.disk).length).toBe(2);
  }, 60_000);

  test("kill -9 after the parity is written but before it is recorded: the next run records it", async () => {
    env = await parityEnv();
    await blaineKilledAt("parity-before-record:1", ["run", "--db", env.db, "--dest", env.disk, env.source]);
    expect(parityFiles(env.disk).length).toBe(4);
    expect(paritySets(env.disk)).toEqual([]);
    const again = await env.run();
    expect(again.exitCode).toBe(0);
    expect(paritySets(env.disk).length).toBe(2);
    expect((await env.verify()).exitCode).toBe(0);
    const to = join(env.root, "restored");
    expect((await env.restore(to)).exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source)));
  }, 60_000);

  test("content archived with --parity off gets its parity from the next run with parity", async () => {
    env = await parityEnv();
    expect((await env.run("--parity", "off")).exitCode).toBe(0);
    expect(parityFiles(env.disk)).toEqual([]);
    const unprotected = await env.verify();
    expect(unprotected.exitCode).toBe(0);
    expect(unprotected.json.parity.unprotected).toBe(2);
    expect((await env.run("--parity", "20%")).exitCode).toBe(0);
    const sets = paritySets(env.disk);
    expect(sets.length).toBe(2);
    // 600 000 bytes in 200 slices of 3000 bytes: 20 % is 40 recovery slices.
    expect(sets.find((s) => s.size === 600_000)!.recovery_slices).toBe(40);
  }, 60_000);

  test("verify finds damaged parity; verify --repair makes it again and repairs damaged data, re-checking the hash", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    const filmHash = paritySets(env.disk).find((s) => s.size === 600_000)!.hash;
    const notesHash = paritySets(env.disk).find((s) => s.size === 10_000)!.hash;
    const vol = parityFiles(env.disk).find((f) => f.includes(notesHash.split(":")[1]) && f.includes(".vol"))!;
    damage(vol, 200, 50);
    damage(env.onDisk("movies/film.mkv"), 1000, 5000); // also seen through its hardlink other/dup.mkv

    const found = await env.verify();
    expect(found.exitCode).toBe(4);
    expect(found.json.parity.damagedSets.length).toBe(1);
    expect(found.json.disks[0].corrupt.length).toBe(2);

    const repaired = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect(repaired.exitCode).toBe(0);
    expect(repaired.json.parity.repaired.sort()).toEqual([join(env.source, "movies", "film.mkv"), join(env.source, "other", "dup.mkv")]);
    expect(repaired.json.parity.rebuiltSets.length).toBe(1);
    // What was repaired is no longer corrupt.
    expect(repaired.json.disks[0].corrupt).toEqual([]);
    expect([...repaired.json.disks[0].repaired].sort()).toEqual(repaired.json.parity.repaired.sort());
    expect(Buffer.compare(readFileSync(env.onDisk("movies/film.mkv")), film)).toBe(0);
    expect(statSync(env.onDisk("movies/film.mkv")).ino).toBe(statSync(env.onDisk("other/dup.mkv")).ino);
    expect((await env.verify()).exitCode).toBe(0);
    expect(existsSync(indexOf(env.disk, filmHash))).toBe(true);
  }, 60_000);

  test("kill -9 between linking a repaired file's second name and renaming it there: the next verify --repair removes the temp; the disk verifies clean", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    damage(env.onDisk("movies/film.mkv"), 1000, 5000); // also seen through its hardlink other/dup.mkv
    const temps = () => ["movies", "other"].flatMap((dir) => readdirSync(env!.onDisk(dir)).filter((name) => name.startsWith(".") && name.endsWith(".tmp")));
    await blaineKilledAt("parity-relink-before-rename:1", ["verify", "--repair", "--db", env.db, "--dest", env.disk]);
    expect(temps()).toHaveLength(1);
    const again = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect({ exitCode: again.exitCode, deadTempsRemoved: again.json.disks[0].deadTempsRemoved }).toEqual({ exitCode: 0, deadTempsRemoved: 1 });
    expect(temps()).toEqual([]);
    const after = await env.verify();
    expect({ exitCode: after.exitCode, unexpected: after.json.disks[0].unexpected }).toEqual({ exitCode: 0, unexpected: [] });
    expect(Buffer.compare(readFileSync(env.onDisk("other/dup.mkv")), film)).toBe(0);
  }, 60_000);

  test("verify --repair says REPAIRED and never CORRUPT for a repaired file; exit 0, and 4 while something is left", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    const notes = join(env.source, "movies", "notes.txt");
    damage(env.onDisk("movies/notes.txt"), 0, 500);
    const repaired = await blaine(["verify", "--repair", "--db", env.db, "--dest", env.disk]);
    expect(repaired.exitCode).toBe(0);
    expect(repaired.stdout).toContain(`REPAIRED ${JSON.stringify(notes)}`);
    expect(repaired.stdout).not.toContain("CORRUPT");
    expect(repaired.stdout).toMatch(/1 repaired, all intact now\./);

    // One file repaired, one beyond its parity and gone from the sources (else it is copied again): only the second is corrupt, and the exit is 4.
    damage(env.onDisk("movies/notes.txt"), 0, 500);
    damage(env.onDisk("movies/film.mkv"), 0, 300_000);
    rmSync(join(env.source, "movies", "film.mkv"));
    rmSync(join(env.source, "other", "dup.mkv"));
    const partly = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect(partly.exitCode).toBe(4);
    expect(partly.json.disks[0].repaired).toEqual([notes]);
    expect(partly.json.disks[0].corrupt.map((c: { path: string }) => c.path).sort()).toEqual([join(env.source, "movies", "film.mkv"), join(env.source, "other", "dup.mkv")]);
    expect(partly.stderr).not.toContain(`CORRUPT ${JSON.stringify(notes)}`);
  }, 60_000);

  test("damage beyond the parity: verify --repair reports it and exits 4", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    damage(env.onDisk("movies/notes.txt"), 0, 5000); // 5 of 10 slices; 1 recovery slice
    // Gone from the sources too: nothing can copy it again (issue 12.2).
    rmSync(join(env.source, "movies", "notes.txt"));
    const result = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect(result.exitCode).toBe(4);
    expect(result.json.parity.unrepaired.map((u: { path: string }) => u.path)).toEqual([join(env.source, "movies", "notes.txt")]);
    expect(result.json.disks[0].corrupt.map((c: { path: string }) => c.path)).toEqual([join(env.source, "movies", "notes.txt")]);
    expect(result.json.disks[0].repaired).toEqual([]);
  }, 60_000);

  test("issue 13: a file copied alone gets its set from the copy's own read, the same bytes as a set made from the file; par2cmdline verifies and repairs it", async () => {
    const big = seededBytes(5 * 1024 * 1024 + 3, 13);
    env = await archiveEnv({ "big.bin": big });
    expect((await env.run()).exitCode).toBe(0);
    const [set] = paritySets(env.disk);
    expect(set.size).toBe(big.length);
    // The same set made from the archived file by reading it (no checksums from a copy).
    const elsewhere = join(env.root, "elsewhere");
    await new ParityStore(elsewhere).create(set.hash, env.onDisk("big.bin"), "big.bin", { percent: 10, engine: "builtin" });
    const names = (root: string) => parityFiles(root).map((f) => f.slice(root.length));
    expect(names(env.disk)).toEqual(names(elsewhere));
    for (const file of parityFiles(env.disk)) expect(Buffer.compare(readFileSync(file), readFileSync(elsewhere + file.slice(env.disk.length)))).toBe(0);
    if (hasPar2) {
      const location = env.onDisk("big.bin");
      const stock = Bun.spawnSync(["par2", "verify", "-q", "-B", dirname(location), indexOf(env.disk, set.hash), location], { stdout: "pipe", stderr: "pipe" });
      expect(stock.stdout.toString()).toContain("All files are correct");
    }
    damage(env.onDisk("big.bin"), 1000, 3000);
    damage(env.onDisk("big.bin"), big.length - 10, 10);
    const repaired = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect(repaired.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(env.onDisk("big.bin")), big)).toBe(0);
  }, 60_000);

  test("restore repairs a damaged file on the fly from its parity", async () => {
    env = await parityEnv();
    expect((await env.run()).exitCode).toBe(0);
    damage(env.onDisk("movies/film.mkv"), 300_000, 2000);
    const to = join(env.root, "restored");
    const result = await env.restore(to);
    expect(result.exitCode).toBe(0);
    expect(result.json.damaged).toEqual([]);
    expect(Buffer.compare(readFileSync(join(to, env.source, "movies", "film.mkv")), film)).toBe(0);
    expect(Buffer.compare(readFileSync(join(to, env.source, "other", "dup.mkv")), film)).toBe(0);
  }, 60_000);

  test.skipIf(!hasPar2)("--parity-engine par2 makes sets the built-in engine verifies and repairs", async () => {
    env = await archiveEnv({ "a.bin": seededBytes(50_000, 9) });
    expect((await env.run("--parity-engine", "par2")).exitCode).toBe(0);
    expect(paritySets(env.disk).length).toBe(1);
    damage(env.onDisk("a.bin"), 100, 100);
    const repaired = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect(repaired.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(env.onDisk("a.bin")), seededBytes(50_000, 9))).toBe(0);
  }, 60_000);

  test("bad parity settings exit 2 and name the option", async () => {
    env = await archiveEnv({ "a.bin": "a" });
    const bad = await env.run("--parity", "lots");
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("--parity");
    const engine = await env.run("--parity-engine", "magic");
    expect(engine.exitCode).toBe(2);
    expect(engine.stderr).toContain("--parity-engine");
    if (!hasProgram("parpar")) {
      const missing = await env.run("--parity-engine", "parpar");
      expect(missing.exitCode).toBe(2);
      expect(missing.stderr).toContain("parpar is not installed");
    }
  }, 30_000);

  test("a deferred hardlink (the content's disk offline) gets the content's parity without new parity", async () => {
    multi = await multiDiskEnv({ movies: { "film.mkv": film } });
    const A = await multi.initDisk("A", 8_000_000);
    const B = await multi.initDisk("B", 8_000_000);
    expect((await multi.run([A])).exitCode).toBe(0);
    const sets = paritySets(A);
    expect(sets.length).toBe(1);
    const before = Object.fromEntries(parityFiles(A).map((f) => [f, statSync(f).mtimeMs]));

    // A is offline: the duplicate becomes a hardlink deferred to A.
    linkSync(multi.path("movies/film.mkv"), multi.path("movies/again.mkv"));
    const offline = await multi.run([B]);
    expect(offline.exitCode).toBe(0);
    expect(offline.json.deferred.queued).toBe(1);
    expect(parityFiles(B)).toEqual([]);

    // A comes back: the link is applied, and the content's one set covers it.
    expect((await multi.run([A, B])).exitCode).toBe(0);
    expect(statSync(multi.onDisk(A, "movies/again.mkv")).ino).toBe(statSync(multi.onDisk(A, "movies/film.mkv")).ino);
    expect(paritySets(A)).toEqual(sets);
    expect(Object.fromEntries(parityFiles(A).map((f) => [f, statSync(f).mtimeMs]))).toEqual(before);
    const verify = await multi.cli(["verify", "--json"], [A, B]);
    expect(verify.exitCode).toBe(0);
    expect(verify.json.parity.unprotected).toBe(0);
  }, 60_000);
});
