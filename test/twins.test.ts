import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, snapshotTree } from "./helpers/fixture.ts";
import { diffTrees, diskContents, multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";
import { cipherMissing } from "./helpers/mounts.ts";

// These tests run the real CLI many times per test: Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: MultiDiskEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

/** A disk C with some files and its twin C′ cloned from it. */
async function twins(e: MultiDiskEnv) {
  const C = await e.initDisk("C", 16_000_000);
  expect((await e.run([C])).exitCode).toBe(0);
  const C2 = e.diskDir("C2", 16_000_000);
  const cloned = await e.cli(["disk", "clone", "C", C2, "--json"], [C]);
  expect(cloned.exitCode).toBe(0);
  expect(cloned.json.from).toEqual([C]);
  expect(diffTrees(C, C2)).toBe("");
  return { C, C2 };
}

/** Restores everything from `disks` alone and compares it with the source. */
async function restoreEqualsSource(e: MultiDiskEnv, disks: readonly string[]) {
  const to = join(e.root, `restored-${Date.now()}`);
  const restored = await e.cli(["restore", e.source, "--to", to, "--json"], disks);
  expect(restored.exitCode).toBe(0);
  expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
}

/** Every copy's file system agrees with its own catalog, and verify finds nothing wrong with them mounted. */
async function expectCopiesClean(e: MultiDiskEnv, disks: readonly string[]) {
  for (const disk of disks) {
    const { onFileSystem, inCatalog } = diskContents(disk);
    expect(onFileSystem).toEqual(inCatalog);
  }
  const verified = await e.cli(["verify", "--json"], disks);
  expect(verified.stdout + verified.stderr).not.toContain("MISMATCH");
  expect(verified.exitCode).toBe(0);
}

async function pendingPaths(e: MultiDiskEnv): Promise<{ op: string; path: string; lastError: string | null }[]> {
  const result = await e.cli(["pending", "--json"]);
  return result.json.actions.map((action: { op: string; path: string; lastError: string | null }) => ({ op: action.op, path: action.path, lastError: action.lastError }));
}

describe("twin disks", () => {
  test("a file edited twice while its twin is away: the twin catches up with the last version only, and the two are identical", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0", g: "unchanged" } });
    const e = env;
    const { C, C2 } = await twins(e);
    // C′ goes away; C stays and receives two edits of f, a rename and a new file.
    appendFileSync(e.path("docs/f"), " + edit 1");
    expect((await e.run([C])).json.modified).toBe(1);
    appendFileSync(e.path("docs/f"), " + edit 2");
    writeFileSync(e.path("docs/new"), "new file");
    rmSync(e.path("docs/g"));
    expect((await e.run([C])).exitCode).toBe(0);
    // Within a run, actions come in the order files finished copying: compare as a set.
    expect((await pendingPaths(e)).map((action) => `${action.op} ${action.path.slice(e.source.length)}`).sort()).toEqual([
      "copy /docs/f",
      "copy /docs/f",
      "copy /docs/new",
      "delete /docs/g",
    ]);
    expect(diffTrees(C, C2)).not.toBe("");
    // The swap: C′ comes back alone and catches up from the sources.
    const back = await e.run([C2]);
    expect(back.exitCode).toBe(0);
    expect(back.json.deferred.applied).toBe(4);
    expect(await pendingPaths(e)).toEqual([]);
    expect(diffTrees(C, C2)).toBe("");
    for (const copy of [C, C2]) {
      const { onFileSystem, inCatalog } = diskContents(copy);
      expect(onFileSystem).toEqual(inCatalog);
    }
    const verified = await e.cli(["verify", "--json"], [C, C2]);
    expect(verified.exitCode).toBe(0);
  });

  test("catch-up when sources changed since: the copy alone takes the new data; a file changed unseen is reported by path and left queued, then comes from the other copy", async () => {
    env = await multiDiskEnv({ docs: { keep: "keep", m: "m version 0" } });
    const e = env;
    const { C, C2 } = await twins(e);
    // C′ away: on C a new file n and an edit of m are archived…
    writeFileSync(e.path("docs/n"), "n as archived");
    utimesSync(e.path("docs/n"), 1_700_000_000, 1_700_000_000);
    appendFileSync(e.path("docs/m"), " + archived edit");
    writeFileSync(e.path("docs/easy"), "still as archived");
    expect((await e.run([C])).exitCode).toBe(0);
    // …then the sources change before C′ is back: n is rewritten with its size and mtime kept
    // (a run sees it unchanged, so only C holds what was archived), m is deleted, a new file arrives.
    writeFileSync(e.path("docs/n"), "n changed now");
    utimesSync(e.path("docs/n"), 1_700_000_000, 1_700_000_000);
    rmSync(e.path("docs/m"));
    writeFileSync(e.path("docs/later"), "new while C is away");
    // C′ alone: what the sources still match is caught up, m's catch-up gives way to its deletion,
    // the new file goes onto C′; n is reported and stays queued.
    const alone = await e.run([C2]);
    expect(alone.exitCode).toBe(3);
    expect(alone.json).toMatchObject({ new: 1, deleted: 1 });
    expect(alone.json.warnings).toEqual([{ path: e.path("docs/n"), message: expect.stringContaining("mount its other copy too") }]);
    const left = (await pendingPaths(e)).filter((action) => action.lastError !== null);
    expect(left.map((action) => action.path)).toEqual([e.path("docs/n")]);
    expect(left[0].lastError).toContain("no copy of the data");
    expect(diskContents(C2).inCatalog).toEqual([e.path("docs/easy"), e.path("docs/keep"), e.path("docs/later")]);
    // Both mounted: C′ finishes from C, C catches up with what C′ took.
    const both = await e.run([C2, C]);
    expect(both.exitCode).toBe(0);
    expect(await pendingPaths(e)).toEqual([]);
    expect(diffTrees(C, C2)).toBe("");
    await expectCopiesClean(e, [C, C2]);
    const to = join(e.root, "restored");
    const restored = await e.cli(["restore", e.source, "--to", to, "--json"], [C2]);
    expect(restored.exitCode).toBe(0);
    writeFileSync(e.path("docs/n"), "n as archived");
    utimesSync(e.path("docs/n"), 1_700_000_000, 1_700_000_000);
    expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
  });

  test("kill -9 while a twin catches up: the next command finishes, and the copies are identical", async () => {
    env = await multiDiskEnv({ docs: { first: "first" } });
    const e = env;
    const { C, C2 } = await twins(e);
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`n${i}`] = `new file ${i}`;
    for (const [name, content] of Object.entries(many)) writeFileSync(e.path(`docs/${name}`), content);
    expect((await e.run([C])).exitCode).toBe(0);
    expect(await pendingPaths(e)).toHaveLength(300);
    await blaineKilledAt("mid-placement:150", ["run", "--db", e.db, "--dest", C2, e.source]);
    const again = await e.run([C2]);
    expect(again.exitCode).toBe(0);
    expect(again.json.recovered).toBeGreaterThan(0);
    expect(await pendingPaths(e)).toEqual([]);
    expect(diffTrees(C, C2)).toBe("");
    const { onFileSystem, inCatalog } = diskContents(C2);
    expect(onFileSystem).toEqual(inCatalog);
    expect(readdirSync(join(C2, ".blaine", "tmp"))).toEqual([]);
    await restoreEqualsSource(e, [C2]);
  });

  test("a clone with no copy mounted is filled from the source files, each hash checked; a changed source is left to fill later", async () => {
    env = await multiDiskEnv({ docs: { a: "aaa", b: "bbb" } });
    const e = env;
    const C = await e.initDisk("C", 16_000_000);
    expect((await e.run([C])).exitCode).toBe(0);
    writeFileSync(e.path("docs/b"), "bbb changed after archiving");
    const C2 = e.diskDir("C2", 16_000_000);
    const cloned = await e.cli(["disk", "clone", "C", C2, "--json"]);
    expect(cloned.exitCode).toBe(3);
    expect(cloned.json.from).toEqual(["source files"]);
    expect(cloned.json.fill.blocked.map((item: { path: string }) => item.path)).toEqual([e.path("docs/b")]);
    // The same command with C mounted completes it.
    const again = await e.cli(["disk", "clone", "C", C2, "--json"], [C]);
    expect(again.exitCode).toBe(0);
    expect(diffTrees(C, C2)).toBe("");
    const list = await e.cli(["disk", "list", "--json"], [C, C2]);
    expect(list.json.disks[0].copies.map((copy: { mounted: string; pending: number }) => [copy.mounted, copy.pending])).toEqual([
      [C, 0],
      [C2, 0],
    ]);
  });

  // The seed's routine: C′ takes the daily data while C is away; then disk D
  // starts, and the file archived on C′ alone moves in the sources.
  test.each([
    ["moved by mv (same inode: a rename)", (from: string, to: string) => renameSync(from, to)],
    ["moved by copy and delete (a new inode: a duplicate of archived content)", (from: string, to: string) => (copyFileSync(from, to), rmSync(from))],
  ])("issue 11.3: a file archived on the twin alone and then %s never leaves the other copy stuck, and that copy ends up holding it", async (_how, move) => {
    env = await multiDiskEnv({ docs: { old: "archived before the clone" } });
    const e = env;
    const { C, C2 } = await twins(e);
    writeFileSync(e.path("docs/daily"), "archived on the twin only");
    expect((await e.run([C2])).exitCode).toBe(0);
    const D = await e.initDisk("D", 16_000_000);
    move(e.path("docs/daily"), e.path("docs/moved"));
    // C comes back with D; nothing may stay blocked for C, now or on any later run.
    const first = await e.run([C, D]);
    expect(first.json.errors).toEqual([]);
    expect(first.exitCode).toBe(0);
    const again = await e.run([C, D]);
    expect(again.json.errors).toEqual([]);
    expect(again.exitCode).toBe(0);
    expect((await pendingPaths(e)).filter((action) => action.lastError !== null)).toEqual([]);
    const where = await e.cli(["whereis", e.path("docs/moved"), "--json"]);
    expect(where.json.files[0].disk).toBe("C");
    expect(diskContents(C).inCatalog).toContain(e.path("docs/moved"));
    await expectCopiesClean(e, [C, D]);
    // C′ is wiped (step 9): C and D alone restore everything.
    await restoreEqualsSource(e, [C, D]);
    // And C′, back once more before the wipe, catches up to be C's equal.
    expect((await e.run([C2, D])).exitCode).toBe(0);
    expect(diffTrees(C, C2)).toBe("");
    await expectCopiesClean(e, [C, C2, D]);
  });

  test("issue 11.8: swap day with an edit: the copy that is back alone takes the newest data, and the other copy catches up later", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0", g: "unchanged" } });
    const e = env;
    const { C, C2 } = await twins(e);
    // Days on C′ (C offsite): f is edited.
    appendFileSync(e.path("docs/f"), " + edit on a day of C′");
    expect((await e.run([C2])).exitCode).toBe(0);
    // Swap day: C′ leaves, C is back alone; f is edited again and a new file arrives.
    appendFileSync(e.path("docs/f"), " + edit on swap day");
    writeFileSync(e.path("docs/new"), "new on swap day");
    const swap = await e.run([C]);
    expect(swap.json.warnings).toEqual([]);
    expect(swap.exitCode).toBe(0);
    expect(swap.json).toMatchObject({ new: 1, modified: 1 });
    expect(diskContents(C).inCatalog).toEqual([e.path("docs/f"), e.path("docs/g"), e.path("docs/new")]);
    await expectCopiesClean(e, [C]);
    await restoreEqualsSource(e, [C]);
    // A week later C′ is back alone and catches up with the newest data.
    const back = await e.run([C2]);
    expect(back.exitCode).toBe(0);
    expect(await pendingPaths(e)).toEqual([]);
    expect(diffTrees(C, C2)).toBe("");
    await expectCopiesClean(e, [C2]);
    await restoreEqualsSource(e, [C2]);
  });

  /** The changes of a week: an edit, a new file, a deletion, a rename. */
  function aWeekOfChanges(e: MultiDiskEnv) {
    appendFileSync(e.path("docs/f"), " + edited");
    writeFileSync(e.path("docs/new"), "new this week");
    rmSync(e.path("docs/gone"));
    renameSync(e.path("docs/old-name"), e.path("docs/new-name"));
  }

  test("issue 11.7: a twin made by hand (rsync -aH) and mounted alone after changes is brought up to date before anything is written to it", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0", gone: "to be deleted", "old-name": "renamed later", keep: "kept" } });
    const e = env;
    const C = await e.initDisk("C", 16_000_000);
    expect((await e.run([C])).exitCode).toBe(0);
    const byHand = e.diskDir("C-by-hand", 16_000_000);
    const rsync = Bun.spawnSync(["rsync", "-aH", `${C}/`, `${byHand}/`]);
    expect(rsync.exitCode).toBe(0);
    // A week on C; then the copy made by hand is mounted alone.
    aWeekOfChanges(e);
    expect((await e.run([C])).exitCode).toBe(0);
    writeFileSync(e.path("docs/later"), "archived onto the copy made by hand");
    const alone = await e.run([byHand]);
    expect(alone.json.errors).toEqual([]);
    expect(alone.exitCode).toBe(0);
    expect(JSON.stringify(alone.json.warnings)).toContain("older than the catalog");
    expect(diskContents(byHand).inCatalog).toEqual(["f", "keep", "later", "new", "new-name"].map((name) => e.path(`docs/${name}`)));
    await expectCopiesClean(e, [byHand]);
    await restoreEqualsSource(e, [byHand]);
    // The original, mounted again, is recognised as behind too and gets the file it missed.
    expect((await e.run([C])).exitCode).toBe(0);
    expect(diffTrees(C, byHand)).toBe("");
    await expectCopiesClean(e, [C]);
  });

  test("issue 11.7: a twin replaced by an old image of itself (it missed catch-ups) is brought up to date when mounted alone", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0", gone: "to be deleted", "old-name": "renamed later", keep: "kept" } });
    const e = env;
    const { C, C2 } = await twins(e);
    const image = join(e.root, "C2-image");
    expect(Bun.spawnSync(["cp", "-a", C2, image]).exitCode).toBe(0);
    // A week on C′ (C offsite), then C′ is restored from its old image and mounted alone again.
    aWeekOfChanges(e);
    expect((await e.run([C2])).exitCode).toBe(0);
    expect(Bun.spawnSync(["sh", "-c", 'rm -rf "$1"/* "$1"/.blaine && cp -a "$2"/. "$1"/', "sh", C2, image]).exitCode).toBe(0);
    const alone = await e.run([C2]);
    expect(alone.json.errors).toEqual([]);
    expect(alone.exitCode).toBe(0);
    expect(JSON.stringify(alone.json.warnings)).toContain("older than the catalog");
    await expectCopiesClean(e, [C2]);
    await restoreEqualsSource(e, [C2]);
    // C comes back and catches up from the sources; both copies are alike.
    expect((await e.run([C, C2])).exitCode).toBe(0);
    expect(await pendingPaths(e)).toEqual([]);
    expect(diffTrees(C, C2)).toBe("");
    await expectCopiesClean(e, [C, C2]);
  });

  test("issue 11.7: a copy that has seen runs the catalog does not know (an old catalog put back) is refused, and nothing on it is deleted", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0", gone: "to be deleted", "old-name": "renamed later", keep: "kept" } });
    const e = env;
    const C = await e.initDisk("C", 16_000_000);
    expect((await e.run([C])).exitCode).toBe(0);
    copyFileSync(e.db, `${e.db}.old`);
    aWeekOfChanges(e);
    expect((await e.run([C])).exitCode).toBe(0);
    const before = diskContents(C).onFileSystem;
    copyFileSync(`${e.db}.old`, e.db);
    const refused = await e.run([C]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("the catalog is older than the disk");
    expect(refused.stderr).toContain("blaine catalog rebuild");
    expect(diskContents(C).onFileSystem).toEqual(before);
  });

  test("issue 11.9: step 9, disk forget drops the twin that becomes D′: refused while C still needs data only C′ holds, then C′ is wiped and cloned as D′", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0" } });
    const e = env;
    const { C, C2 } = await twins(e);
    // The last day on C′: a file only C′ holds (C is offsite).
    writeFileSync(e.path("docs/daily"), "archived on C′ alone");
    expect((await e.run([C2])).exitCode).toBe(0);
    const refused = await e.cli(["disk", "forget", "C", "--copy", "2"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stdout).toContain(`ONLY ON THIS COPY ${JSON.stringify(e.path("docs/daily"))}`);
    expect(refused.stderr).toContain("nothing was changed");
    // disk list warns before the wipe too.
    const listed = await e.cli(["disk", "list"]);
    expect(listed.stdout).toContain("holds 1 file(s) the other copies still lack: do not wipe it yet");
    expect((await e.cli(["disk", "list", "--json"])).json.disks[0].copies.map((copy: { onlyHere: number }) => copy.onlyHere)).toEqual([0, 1]);
    // C catches up from C′ (both mounted); then C′ can go, named by its directory.
    expect((await e.run([C, C2])).exitCode).toBe(0);
    const forgot = await e.cli(["disk", "forget", "C", "--copy", C2, "--json"]);
    expect(forgot.exitCode).toBe(0);
    expect(forgot.json).toMatchObject({ label: "C", copy: { number: 2, lastMountPath: C2 }, lost: [] });
    const list = (await e.cli(["disk", "list", "--json"])).json.disks[0];
    expect(list.copies.map((copy: { mounted: string | null; pending: number }) => copy.pending)).toEqual([0]);
    // C′ is wiped and becomes D′; D starts, and a week goes on with C offsite.
    expect(Bun.spawnSync(["sh", "-c", 'rm -rf "$1"/* "$1"/.blaine', "sh", C2]).exitCode).toBe(0);
    const D = await e.initDisk("D", 16_000_000);
    expect((await e.cli(["disk", "clone", "D", C2], [D])).exitCode).toBe(0);
    writeFileSync(e.path("docs/on-D"), "the first file of D");
    const week = await e.run([D]);
    expect(week.exitCode).toBe(0);
    writeFileSync(e.path("docs/on-D"), "the first file of D, edited");
    expect((await e.run([C2])).exitCode).toBe(0);
    expect((await e.run([D, C])).exitCode).toBe(0);
    expect(await pendingPaths(e)).toEqual([]);
    expect(diffTrees(D, C2)).toBe("");
    await expectCopiesClean(e, [C, D, C2]);
    const where = await e.cli(["whereis", e.path("docs"), "--json"]);
    expect(Object.fromEntries(where.json.files.map((file: { path: string; disk: string }) => [file.path.slice(e.source.length), file.disk]))).toMatchObject({
      "/docs/f": "C",
      "/docs/daily": "C",
    });
    await restoreEqualsSource(e, [C, D]);
    await restoreEqualsSource(e, [C, C2]);
  });

  test("issue 11.9: disk forget --force lists what only the twin held and drops it from the archive; a later run archives it again from the sources", async () => {
    env = await multiDiskEnv({ docs: { f: "version 0" } });
    const e = env;
    const { C, C2 } = await twins(e);
    writeFileSync(e.path("docs/daily"), "archived on C′ alone");
    expect((await e.run([C2])).exitCode).toBe(0);
    const forced = await e.cli(["disk", "forget", "C", "--copy", "2", "--force", "--json"]);
    expect(forced.exitCode).toBe(0);
    expect(forced.json.lost).toEqual([e.path("docs/daily")]);
    expect((await e.cli(["whereis", e.path("docs/daily")])).exitCode).toBe(2);
    expect(await pendingPaths(e)).toEqual([]);
    const again = await e.run([C]);
    expect(again.exitCode).toBe(0);
    expect(again.json.new).toBe(1);
    await expectCopiesClean(e, [C]);
    await restoreEqualsSource(e, [C]);
    // The forgotten drive is no longer a copy the catalog knows.
    expect((await e.run([C2])).stderr).toContain("does not know");
  });

  const noGocryptfs = cipherMissing("gocryptfs");
  if (noGocryptfs) console.log(`skipped: encrypted twin messages: ${noGocryptfs}`);
  test.skipIf(noGocryptfs !== undefined)("issue 11: messages about encrypted twins name the disk, its copy and its directory, never a private mountpoint; clone says it filled the twin", async () => {
    env = await multiDiskEnv({ docs: { keep: "kept" } });
    const e = env;
    const keyfile = join(e.root, "key");
    writeFileSync(keyfile, "a password for the twins\n", { mode: 0o600 });
    const key = ["--keyfile", keyfile];
    const C = e.diskDir("C", 16_000_000);
    expect((await e.cli(["disk", "init", C, "--label", "C", "--encrypt", "gocryptfs", ...key])).exitCode).toBe(0);
    const first = await e.run([C], ...key);
    expect(first.exitCode).toBe(0);
    // Nothing waits for any copy: the human summary (stderr with --json) says nothing about deferred actions (no "0 in all wait").
    expect(first.stderr).not.toMatch(/deferred|wait/);
    const C2 = e.diskDir("C2", 16_000_000);
    const cloned = await e.cli(["disk", "clone", "C", C2, "--encrypt", "gocryptfs", ...key], [C]);
    expect(cloned.exitCode).toBe(0);
    expect(cloned.stdout + cloned.stderr).toContain(`Filled ${C2} with 1 file(s) from ${C}: it is now copy 2 of disk "C", complete.`);
    expect(cloned.stdout + cloned.stderr).not.toContain("deferred");
    // On C: a file whose source then changes unseen (same size and mtime), so C′ cannot catch it up alone.
    writeFileSync(e.path("docs/n"), "n as archived");
    utimesSync(e.path("docs/n"), 1_700_000_000, 1_700_000_000);
    expect((await e.run([C], ...key)).exitCode).toBe(0);
    writeFileSync(e.path("docs/n"), "n changed now");
    utimesSync(e.path("docs/n"), 1_700_000_000, 1_700_000_000);
    const alone = await blaine(["run", "--db", e.db, "--dest", C2, ...key, e.source]);
    expect(alone.exitCode).toBe(3);
    const told = alone.stdout + alone.stderr;
    expect(told).toContain(`disk "C" (copy 2 at ${C2}) not caught up (copy)`);
    expect(told).toContain("1 deferred action(s) still wait: blaine pending.");
    expect(told).not.toContain("/run/blaine");
    const verified = await e.cli(["verify", ...key], [C2]);
    expect(verified.stdout + verified.stderr).toContain(`not caught up on disk "C" (copy 2 at ${C2})`);
    expect(verified.stdout + verified.stderr).not.toContain("/run/blaine");
  });
});
