import { setDefaultTimeout, afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine, type CliResult } from "./helpers/cli.ts";
import { makeTree, seededBytes, tempDir } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";

// The seed's whole routine at small scale: dozens of real CLI runs, each
// mounting gocryptfs disks. Minutes, not seconds.
setDefaultTimeout(900_000);

const skipReason = process.getuid?.() !== 0 ? "not root" : cipherMissing("gocryptfs");
if (skipReason) console.log(`skipped: the disk-rotation routine needs encrypted disks: ${skipReason}`);

/** Every file, symlink and hardlink group of a tree with mode and mtime to the nanosecond, comparable with toEqual. */
function exactTree(root: string): Record<string, string> {
  const result: Record<string, string> = {};
  const groups = new Map<bigint, number>();
  const walk = (dir: string, relative: string) => {
    for (const name of readdirSync(dir).sort()) {
      const rel = relative ? `${relative}/${name}` : name;
      const path = join(dir, name);
      const stats = lstatSync(path, { bigint: true });
      if (stats.isDirectory()) {
        walk(path, rel);
        continue;
      }
      // Hardlink groups numbered in order of appearance (symlinks can be hardlinked too).
      let group = 0;
      if (stats.nlink > 1n) {
        group = groups.get(stats.ino) ?? groups.size + 1;
        groups.set(stats.ino, group);
      }
      if (stats.isSymbolicLink()) result[rel] = `symlink -> ${readlinkSync(path)} link ${group}`;
      else {
        const sha1 = new Bun.CryptoHasher("sha1").update(readFileSync(path)).digest("hex");
        result[rel] = `file ${sha1} mode ${(Number(stats.mode) & 0o7777).toString(8)} mtime ${stats.mtimeNs} link ${group}`;
      }
    }
  };
  walk(root, "");
  return result;
}

/** An odd mtime with nanoseconds, so a restore that rounds anywhere is caught. */
function oddMtime(path: string, seed: number): void {
  const seconds = 1_600_000_000 + seed * 7919;
  const time = `${seconds}.${String(123_456_789 + seed).padStart(9, "0")}`;
  // utimesSync takes floating seconds (loses nanoseconds): touch -d takes them exactly.
  const result = Bun.spawnSync(["touch", "-h", "-d", `@${time}`, path]);
  if (result.exitCode !== 0) throw new Error(`touch ${path}: ${result.stderr}`);
}

describe.skipIf(Boolean(skipReason))("the seed's disk-rotation routine, encrypted, with parity", () => {
  const dir = tempDir("blaine-routine-");
  afterAll(() => dir.cleanup());
  const root = dir.path;
  const source = join(root, "Media Library");
  const keyfile = join(root, "archive.key");
  let db = join(root, "catalog.db");
  const disk = (name: string) => join(root, "disks", name);
  const KB = 1024;
  let seed = 1;
  const KEY = ["--keyfile", keyfile];

  const cli = (args: readonly string[], disks: readonly string[]): Promise<CliResult> =>
    blaine([...args, "--db", db, ...KEY, ...disks.flatMap((d) => ["--dest", disk(d)])]);
  const expectOk = (what: string, result: CliResult, codes: readonly number[] = [0]) => {
    if (!codes.includes(result.exitCode)) throw new Error(`${what}: exit ${result.exitCode}\n${result.stdout}\n${result.stderr}`);
    return result;
  };
  const run = async (what: string, disks: readonly string[]) => expectOk(what, await cli(["run", "--json", source], disks));

  /** A new media file (unicode, spaces, an apostrophe) with an odd mtime. */
  const addFile = (relative: string, bytes: number) => {
    const path = join(source, relative);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, seededBytes(bytes, seed));
    oddMtime(path, seed++);
  };

  /** Restores everything from `disks` and compares it with the source exactly; then every disk verifies clean. */
  const restoreAndVerify = async (week: string, disks: readonly string[]) => {
    const to = join(root, `restored-${week}`);
    expectOk(`${week}: restore`, await cli(["restore", source, "--to", to, "--json"], disks));
    expect(exactTree(join(to, source))).toEqual(exactTree(source));
    rmSync(to, { recursive: true, force: true });
    const verified = expectOk(`${week}: verify`, await cli(["verify", "--json"], disks));
    expect(verified.stdout + verified.stderr).not.toContain("MISMATCH");
  };

  test("A, B and half of C filled; C′; days on C′; swaps with catch-up; D and D′ from a wiped C′; a lost catalog rebuilt; every restore equals the source", async () => {
    writeFileSync(keyfile, `routine-${crypto.randomUUID()}\n`, { mode: 0o600 });
    mkdirSync(join(root, "disks"));
    // Step 1: the initial dataset, about 2.5 disks' worth.
    makeTree(source, {});
    for (let i = 0; i < 10; i++) addFile(`Films/Film ${i} – «été» l'an ${i}.mkv`, 200 * KB);
    for (let i = 0; i < 6; i++) addFile(`Música/Álbum 1/pista ${i}.flac`, 60 * KB);
    linkSync(join(source, "Films/Film 0 – «été» l'an 0.mkv"), join(source, "Films/Film 0 (hardlink).mkv"));
    symlinkSync("Álbum 1", join(source, "Música/latest"));
    symlinkSync("Álbum 1/pista 0.flac", join(source, "Música/first track"));
    linkSync(join(source, "Música/first track"), join(source, "Música/first track (hardlinked symlink)"));
    chmodSync(join(source, "Música/Álbum 1/pista 1.flac"), 0o640);

    for (const label of ["A", "B", "C"]) {
      expectOk(`disk init ${label}`, await cli(["disk", "init", disk(label), "--label", label, "--capacity", String(1000 * KB), "--encrypt", "gocryptfs"], []));
    }
    const initial = await run("initial archive onto A, B, C", ["A", "B", "C"]);
    expect(initial.json.notStored.files).toBe(0);
    const listed = expectOk("disk list", await cli(["disk", "list", "--json"], []));
    const states = Object.fromEntries(listed.json.disks.map((d: { label: string; state: string }) => [d.label, d.state]));
    expect(states).toEqual({ A: "full", B: "full", C: "open" });

    // Step 2: C gets its twin C′ (encrypted too); A, B and C go offsite.
    expectOk("disk clone C → C′", await cli(["disk", "clone", "C", disk("C2"), "--encrypt", "gocryptfs"], ["C"]));
    await restoreAndVerify("after the clone", ["A", "B", "C", "C2"]);

    // Week 1: three days on C′ alone; new data, an edit, a rename of a directory holding a file on A, a delete, a duplicate.
    addFile("Series/S01/E01 'pilot'.mkv", 90 * KB);
    await run("week 1 day 1 on C′", ["C2"]);
    appendFileSync(join(source, "Series/S01/E01 'pilot'.mkv"), "edited on day 2");
    oddMtime(join(source, "Series/S01/E01 'pilot'.mkv"), seed++);
    addFile("Series/S01/E02.mkv", 80 * KB);
    await run("week 1 day 2 on C′", ["C2"]);
    renameSync(join(source, "Música"), join(source, "Music"));
    unlinkSync(join(source, "Films/Film 9 – «été» l'an 9.mkv"));
    linkSync(join(source, "Series/S01/E02.mkv"), join(source, "Series/S01/E02 (same).mkv"));
    await run("week 1 day 3 on C′", ["C2"]);

    // Swap day: C comes home, C′ leaves; today's edit and new file go onto C, which catches up first.
    appendFileSync(join(source, "Series/S01/E02.mkv"), "swap-day edit");
    oddMtime(join(source, "Series/S01/E02.mkv"), seed++);
    addFile("Series/S01/E03.mkv", 70 * KB);
    await run("week 1 swap day on C", ["C"]);
    await restoreAndVerify("week 1", ["A", "B", "C"]);

    // Week 2: three days on C, then swap back to C′, which catches up.
    addFile("Series/S02/E01.mkv", 60 * KB);
    await run("week 2 day 1 on C", ["C"]);
    renameSync(join(source, "Series/S02"), join(source, "Series/Season 2"));
    await run("week 2 day 2 on C", ["C"]);
    addFile("Series/Season 2/E02.mkv", 60 * KB);
    await run("week 2 day 3 on C", ["C"]);
    addFile("Series/Season 2/E03.mkv", 40 * KB);
    await run("week 2 swap day on C′", ["C2"]);
    await restoreAndVerify("week 2", ["A", "B", "C2"]);

    // C′ fills: D arrives, new data spans onto it.
    expectOk("disk init D", await cli(["disk", "init", disk("D"), "--label", "D", "--capacity", String(1000 * KB), "--encrypt", "gocryptfs"], []));
    for (let i = 0; i < 4; i++) addFile(`Films/New ${i}.mkv`, 200 * KB);
    const spanned = await run("C′ fills, D takes the rest", ["C2", "D"]);
    expect(spanned.json.notStored.files).toBe(0);

    // Step 9: C′ is to be wiped and become D′. Forgetting it while it holds data C lacks is refused…
    const refused = await cli(["disk", "forget", "C", "--copy", disk("C2")], []);
    expect(refused.exitCode).toBe(2);
    expect(refused.stdout + refused.stderr).toContain("Season 2/E03.mkv");
    // …so C comes home once to catch up, then C′ is forgotten, wiped, and cloned from D.
    await run("C catches up before C′ is wiped", ["C", "D"]);
    expectOk("disk forget C′", await cli(["disk", "forget", "C", "--copy", disk("C2")], []));
    rmSync(disk("C2"), { recursive: true, force: true });
    expectOk("disk clone D → D′ (the wiped C′)", await cli(["disk", "clone", "D", disk("D2"), "--encrypt", "gocryptfs"], ["D"]));
    const afterForget = expectOk("disk list", await cli(["disk", "list", "--json"], []));
    const copiesOfC = afterForget.json.disks.find((d: { label: string }) => d.label === "C").copies;
    expect(copiesOfC.length).toBe(1);

    // Week 3: days on D′, then the swap to D.
    addFile("Series/S03/E01.mkv", 50 * KB);
    await run("week 3 day 1 on D′", ["D2"]);
    unlinkSync(join(source, "Series/S01/E02 (same).mkv"));
    renameSync(join(source, "Films/New 0.mkv"), join(source, "Films/Renamed New 0.mkv"));
    await run("week 3 day 2 on D′", ["D2"]);
    addFile("Series/S03/E02.mkv", 50 * KB);
    await run("week 3 swap day on D", ["D"]);
    await restoreAndVerify("week 3", ["A", "B", "C", "D"]);

    // Catastrophe: the host catalog is lost. Rebuilt from the encrypted disks with the key, then everything restores.
    rmSync(db);
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
    db = join(root, "rebuilt.db");
    expectOk("catalog rebuild", await blaine(["catalog", "rebuild", "--db", db, ...KEY, ...["A", "B", "C", "D", "D2"].map(disk)]));
    await restoreAndVerify("after the rebuild", ["A", "B", "C", "D"]);
  });
});
