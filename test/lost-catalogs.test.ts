import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { diskContents, multiDiskEnv } from "./helpers/multi-disk-env.ts";
import { blaine, spawnBlaine, waitFor } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, makeTree, seededBytes, snapshotTree, tempDir } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";

// These tests run the real CLI on real trees: Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

const film = seededBytes(300_000, 7);
function tree() {
  return {
    movies: { "film.mkv": film, "notes.txt": "notes of the film\n".repeat(200) },
    other: { "dup.mkv": film, "link": { symlink: "../movies/film.mkv" } },
    "readme.txt": "read me\n",
  };
}

function rowsOf(path: string, sql: string): unknown[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.query(sql).all();
  } finally {
    db.close();
  }
}

/** Overwrites `length` bytes of a file at `offset` with other bytes, in place (bit rot). */
function damage(path: string, offset: number, length: number): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, Buffer.alloc(length, 0x5a), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

describe("a lost disk catalog", () => {
  test("issue 12.5: a deleted or 0-byte disk catalog is an error naming it, and blaine disk rebuild brings it back from the host catalog and the disk", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    const diskCatalog = join(env.disk, ".blaine", "catalog.db");
    const entriesBefore = rowsOf(diskCatalog, "SELECT path, kind, size, mtime_ms, mode, hash, link_target FROM entries ORDER BY path");
    const paritySetsBefore = rowsOf(diskCatalog, "SELECT hash, size, slice_size, recovery_slices, files, bytes FROM parity_sets ORDER BY hash");
    expect(entriesBefore).toHaveLength(5);
    expect(paritySetsBefore).toHaveLength(3);

    rmSync(diskCatalog);
    // Every command that opens the disk refuses, naming the file and the command that rebuilds it; nothing is recreated.
    for (const result of [await env.run(), await env.verify(), await env.cli("verify", "--repair")]) {
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(diskCatalog);
      expect(result.stderr).toContain(`blaine disk rebuild ${env.disk}`);
    }
    expect(existsSync(diskCatalog)).toBe(false);
    const doctor = await env.cli("doctor", "--json");
    expect(doctor.exitCode).toBe(1);
    expect(doctor.json.disks[0].ok).toBe(false);
    expect(doctor.json.disks[0].message).toContain("blaine disk rebuild");

    // A 0-byte catalog is no better than none.
    writeFileSync(diskCatalog, "");
    const zero = await env.run();
    expect(zero.exitCode).toBe(1);
    expect(zero.stderr).toContain(diskCatalog);
    expect(zero.stderr).toContain("blaine disk rebuild");
    expect(statSync(diskCatalog).size).toBe(0);

    // Bit rot meanwhile: the rebuilt catalog must still call it damaged, so that parity repairs it.
    damage(env.onDisk("movies/notes.txt"), 100, 200);
    const rebuild = await env.cli("disk", "rebuild", env.disk, "--json");
    // Exit 4: the rebuild found damaged data (as verify would).
    expect(rebuild.exitCode).toBe(4);
    expect(rebuild.json).toMatchObject({ label: "A", entries: 5, paritySets: 3, damaged: [join(env.source, "movies", "notes.txt")], missing: [] });
    // The 0-byte file is kept aside, never deleted.
    expect(rebuild.json.keptAside).toMatch(/catalog\.db\.damaged-/);
    expect(existsSync(rebuild.json.keptAside)).toBe(true);
    expect(rowsOf(diskCatalog, "SELECT path, kind, size, mtime_ms, mode, hash, link_target FROM entries ORDER BY path")).toEqual(entriesBefore);
    expect(rowsOf(diskCatalog, "SELECT hash, size, slice_size, recovery_slices, files, bytes FROM parity_sets ORDER BY hash")).toEqual(paritySetsBefore);

    const repaired = await env.cli("verify", "--repair", "--json");
    expect(repaired.exitCode).toBe(0);
    expect(repaired.json.disks[0]).toMatchObject({ unexpected: [], catalogMismatch: [], missing: [], corrupt: [] });
    expect(repaired.json.disks[0].repaired).toEqual([join(env.source, "movies", "notes.txt")]);
    expect((await env.verify()).exitCode).toBe(0);

    // Renames and duplicates are recognised again: nothing is copied.
    renameSync(join(env.source, "movies"), join(env.source, "films"));
    const moved = await env.run();
    expect(moved.exitCode).toBe(0);
    expect(moved.json).toMatchObject({ renamed: 2, new: 0, deleted: 0 });
    expect(moved.json.bytesCopied).toBe(0);
    // The duplicate comes in a run of its own: in the rename's run its content's only holder is the path
    // being renamed, which the batch cannot link to, and whether the two shared a batch was up to timing.
    writeFileSync(join(env.source, "third.mkv"), film);
    // A duplicate is a hardlink on the disk only when it shows the same mtime and mode (issue 12.11).
    expect(Bun.spawnSync(["touch", "-r", join(env.source, "films", "film.mkv"), join(env.source, "third.mkv")]).exitCode).toBe(0);
    const run = await env.run();
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ renamed: 0, new: 1, deleted: 0 });
    expect(run.json.bytesCopied).toBe(0);
    expect(statSync(env.onDisk("third.mkv")).ino).toBe(statSync(env.onDisk("films/film.mkv")).ino);
    expect(rowsOf(diskCatalog, "SELECT count(*) AS n FROM parity_sets")).toEqual([{ n: 3 }]);
    expect((await env.verify()).exitCode).toBe(0);

    const restored = tempDir();
    try {
      expect((await env.restore(restored.path)).exitCode).toBe(0);
      expect(snapshotTree(join(restored.path, env.source))).toEqual(snapshotTree(env.source));
    } finally {
      restored.cleanup();
    }
  });

  test("issue 12.5: a rebuilt catalog of a disk with deferred actions pending takes those paths as they are, so the queue still applies", async () => {
    const multi = await multiDiskEnv({ a: "first file", dir: { b: "second file", c: "third" } });
    try {
      const A = await multi.initDisk("A", 8 << 20);
      const B = await multi.initDisk("B", 8 << 20);
      expect((await multi.run([A])).exitCode).toBe(0);
      // A is away: the rename and the deletion wait in its queue.
      renameSync(multi.path("dir"), multi.path("moved"));
      rmSync(multi.path("a"));
      const away = await multi.run([B]);
      expect(away.exitCode).toBe(0);
      expect(away.json.deferred.queued).toBeGreaterThan(0);

      rmSync(join(A, ".blaine", "catalog.db"));
      const rebuild = await multi.cli(["disk", "rebuild", A, "--json"]);
      expect(rebuild.exitCode).toBe(0);
      expect(rebuild.json).toMatchObject({ entries: 3, damaged: [], missing: [] });

      const back = await multi.run([A, B]);
      expect(back.exitCode).toBe(0);
      expect(back.json.deferred.applied).toBeGreaterThan(0);
      expect(back.json.bytesCopied).toBe(0);
      const contents = diskContents(A);
      expect(contents.inCatalog).toEqual(contents.onFileSystem);
      expect(contents.onFileSystem).toEqual([multi.path("moved/b"), multi.path("moved/c")]);
      expect((await multi.cli(["verify", "--json"], [A, B])).exitCode).toBe(0);
    } finally {
      multi.cleanup();
    }
  });
});

const encryptionSkip = cipherMissing("gocryptfs");
if (encryptionSkip) console.log(`skipped: a lost disk.json of an encrypted disk: ${encryptionSkip}`);

test("issue 12.5: a disk catalog an older Blaine made anew empty is a problem for doctor, and disk rebuild brings it back", async () => {
  env = await archiveEnv(tree());
  expect((await env.run()).exitCode).toBe(0);
  // What the old code left: an empty, whole catalog in place of the lost one.
  const fresh = join(env.root, "fresh-disk");
  expect((await blaine(["disk", "init", fresh, "--label", "F", "--db", join(env.root, "other.db")])).exitCode).toBe(0);
  const diskCatalog = join(env.disk, ".blaine", "catalog.db");
  writeFileSync(diskCatalog, readFileSync(join(fresh, ".blaine", "catalog.db")));
  const doctor = await env.cli("doctor", "--json");
  expect(doctor.exitCode).toBe(1);
  expect(doctor.json.disks[0].ok).toBe(false);
  expect(doctor.json.disks[0].message).toContain("holds none of the 5 files");
  expect(doctor.json.disks[0].message).toContain(`blaine disk rebuild ${env.disk}`);
  const rebuild = await env.cli("disk", "rebuild", env.disk, "--json");
  expect(rebuild.exitCode).toBe(0);
  expect(rebuild.json).toMatchObject({ rebuilt: true, entries: 5, paritySets: 3, damaged: [], missing: [] });
  expect((await env.verify()).exitCode).toBe(0);
  expect((await env.cli("doctor")).exitCode).toBe(0);
});

describe("a lost disk label", () => {
  test("issue 12.6: a disk that lost its .blaine/disk.json is told to run blaine disk rebuild (disk init refuses it), which writes the same label again", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    // A second disk, so the rebuild must tell the two apart by their data.
    const other = join(env.root, "disk-b");
    expect((await blaine(["disk", "init", other, "--label", "B", "--db", env.db])).exitCode).toBe(0);
    makeTree(join(env.root, "src-b"), { only: "on B" });
    expect((await blaine(["run", "--db", env.db, "--dest", other, join(env.root, "src-b")])).exitCode).toBe(0);
    const labelPath = join(env.disk, ".blaine", "disk.json");
    const original = JSON.parse(readFileSync(labelPath, "utf8"));
    rmSync(labelPath);

    const run = await env.run();
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain(`blaine disk rebuild ${env.disk}`);
    expect(run.stderr).not.toMatch(/run "blaine disk init/);
    // The old advice made it a new, empty disk around the old data: refused now.
    const init = await blaine(["disk", "init", env.disk, "--label", "A2", "--db", env.db]);
    expect(init.exitCode).toBe(2);
    expect(init.stderr).toContain("blaine disk rebuild");
    expect(existsSync(labelPath)).toBe(false);
    expect((await env.cli("disk", "list", "--json")).json.disks.map((disk: { label: string }) => disk.label)).toEqual(["A", "B"]);

    const rebuild = await env.cli("disk", "rebuild", env.disk, "--json");
    expect(rebuild.exitCode).toBe(0);
    expect(rebuild.json).toMatchObject({ label: "A", labelRebuilt: true, rebuilt: false });
    const { created: _created, ...rest } = JSON.parse(readFileSync(labelPath, "utf8"));
    const { created: _originalCreated, ...expected } = original;
    expect(rest).toEqual(expected);

    const again = await env.run();
    expect(again.exitCode).toBe(0);
    expect(again.json.unchanged).toBe(5);
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("issue 12.6: a twin that lost its disk.json gets back its own copy id (the copy last seen there), not its twin's", async () => {
    const multi = await multiDiskEnv({ a: "first", dir: { b: "second" } });
    try {
      const C = await multi.initDisk("C", 8 << 20);
      expect((await multi.run([C])).exitCode).toBe(0);
      const C2 = multi.diskDir("C2", 8 << 20);
      expect((await multi.cli(["disk", "clone", "C", C2], [C])).exitCode).toBe(0);
      expect((await multi.run([C2])).exitCode).toBe(0);
      const labelPath = join(C2, ".blaine", "disk.json");
      const original = JSON.parse(readFileSync(labelPath, "utf8"));
      const twin = JSON.parse(readFileSync(join(C, ".blaine", "disk.json"), "utf8"));
      expect(original.copyId).not.toBe(twin.copyId);
      rmSync(labelPath);

      const rebuild = await multi.cli(["disk", "rebuild", C2, "--json"]);
      expect(rebuild.exitCode).toBe(0);
      expect(JSON.parse(readFileSync(labelPath, "utf8")).copyId).toBe(original.copyId);
      // Both copies mounted together are two copies, not one seen twice.
      expect((await multi.run([C, C2])).exitCode).toBe(0);
      expect((await multi.cli(["verify"], [C, C2])).exitCode).toBe(0);
    } finally {
      multi.cleanup();
    }
  });

  test.skipIf(encryptionSkip !== undefined)("issue 12.6: an encrypted disk that lost its disk.json gets it back with its key (cipher included), and its lost catalog inside the encryption too", async () => {
    const dir = tempDir();
    try {
      const source = join(dir.path, "src");
      makeTree(source, tree());
      const db = join(dir.path, "catalog.db");
      const disk = join(dir.path, "disk");
      const keyfile = join(dir.path, "key");
      writeFileSync(keyfile, `pw-${crypto.randomUUID()}\n`, { mode: 0o600 });
      const common = ["--db", db, "--dest", disk, "--keyfile", keyfile];
      expect((await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyfile])).exitCode).toBe(0);
      expect((await blaine(["run", ...common, source])).exitCode).toBe(0);
      const labelPath = join(disk, ".blaine", "disk.json");
      const original = JSON.parse(readFileSync(labelPath, "utf8"));
      rmSync(labelPath);
      // Its catalog, inside the encryption, is lost too (removed through a mount of our own).
      const plain = join(dir.path, "plain");
      mkdirSync(plain);
      const mounted = Bun.spawnSync(["gocryptfs", "-q", "-passfile", keyfile, join(disk, "encrypted"), plain]);
      expect(mounted.exitCode).toBe(0);
      try {
        rmSync(join(plain, ".blaine", "catalog.db"));
      } finally {
        Bun.spawnSync([Bun.which("fusermount3") ? "fusermount3" : "fusermount", "-u", plain]);
      }

      const run = await blaine(["run", ...common, source]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toContain(`blaine disk rebuild ${disk}`);
      const withoutKey = await blaine(["disk", "rebuild", disk, "--db", db]);
      expect(withoutKey.exitCode).toBe(2);
      expect(withoutKey.stderr).toContain("--keyfile");
      expect(existsSync(labelPath)).toBe(false);

      const rebuild = await blaine(["disk", "rebuild", disk, "--db", db, "--keyfile", keyfile, "--json"]);
      expect(rebuild.exitCode).toBe(0);
      expect(rebuild.json).toMatchObject({ label: "E", labelRebuilt: true, rebuilt: true, entries: 5, paritySets: 3, damaged: [], missing: [] });
      const { created: _created, ...rest } = JSON.parse(readFileSync(labelPath, "utf8"));
      const { created: _originalCreated, ...expected } = original;
      expect(rest).toEqual(expected);
      expect(rest.cipher).toBe("gocryptfs");
      const again = await blaine(["run", ...common, "--json", source]);
      expect(again.exitCode).toBe(0);
      expect(again.json.unchanged).toBe(5);
      expect((await blaine(["verify", ...common])).exitCode).toBe(0);
    } finally {
      dir.cleanup();
    }
  });
});

/** Overwrites the first page of table `table`'s b-tree with garbage: the file opens, reading the table fails ("malformed"). */
function damageTable(path: string, table: string): void {
  const sqlite = new Database(path, { readonly: true });
  const { rootpage } = sqlite.query("SELECT rootpage FROM sqlite_master WHERE name = ?").get(table) as { rootpage: number };
  const { page_size: pageSize } = sqlite.query("PRAGMA page_size").get() as { page_size: number };
  sqlite.close();
  damage(path, (rootpage - 1) * pageSize, pageSize);
}

describe("catalog errors", () => {
  test("issue 12.7: a damaged page names the catalog (host or disk) and the command that rebuilds it", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    const hostCopy = `${env.db}.good`;
    writeFileSync(hostCopy, readFileSync(env.db));
    damageTable(env.db, "files");
    for (const result of [await env.cli("status"), await env.run()]) {
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`host catalog ${env.db} is damaged`);
      expect(result.stderr).toContain("blaine catalog rebuild");
    }
    writeFileSync(env.db, readFileSync(hostCopy));
    const diskCatalog = join(env.disk, ".blaine", "catalog.db");
    damageTable(diskCatalog, "entries");
    const verify = await env.verify();
    expect(verify.exitCode).toBe(1);
    expect(verify.stderr).toContain(diskCatalog);
    expect(verify.stderr).toContain(`blaine disk rebuild ${env.disk}`);
    expect((await env.cli("disk", "rebuild", env.disk)).exitCode).toBe(0);
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("issue 12.7: a 0-byte host catalog is not an empty archive: status, run and disk init say it is empty and point at catalog rebuild", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    writeFileSync(env.db, "");
    for (const result of [await env.cli("status"), await env.run(), await blaine(["disk", "init", join(env.root, "new-disk"), "--label", "N", "--db", env.db])]) {
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`host catalog ${env.db} is empty`);
      expect(result.stderr).toContain("blaine catalog rebuild");
      expect(result.stdout).not.toContain("0 files");
    }
    expect(statSync(env.db).size).toBe(0);
  });

  test("issue 12.7: a hot journal a killed writer left is rolled back by read-only commands, not reported as damage", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    // A writer killed half way through a transaction that emptied the catalog.
    const script = join(env.root, "killed-writer.ts");
    writeFileSync(
      script,
      `import { Database } from "bun:sqlite";
const db = new Database(process.argv[2]);
db.exec("PRAGMA journal_mode = DELETE; PRAGMA cache_size = 1; BEGIN; DELETE FROM files; DELETE FROM runs");
process.kill(process.pid, "SIGKILL");
`,
    );
    const killed = Bun.spawnSync(["bun", script, env.db]);
    expect(killed.signalCode).toBe("SIGKILL");
    expect(statSync(`${env.db}-journal`).size).toBeGreaterThan(0);
    for (const command of ["status", "ls", "disk list"]) {
      const result = await env.cli(...command.split(" "), "--json");
      expect(result.stderr).not.toMatch(/damaged|readonly/);
      expect(result.exitCode).toBe(0);
    }
    expect((await env.cli("status", "--json")).json.files).toBe(5);
    expect(existsSync(`${env.db}-journal`)).toBe(false);
  });

  test("issue 12.7: two runs through two copies of one host catalog onto one disk never end with a bare 'database is locked'", async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 1500; i++) many[`f${i}`] = `file ${i}\n`;
    env = await archiveEnv({ many });
    const copy = join(env.root, "copy-of-catalog.db");
    writeFileSync(copy, readFileSync(env.db));
    const first = spawnBlaine(["run", "--db", env.db, "--dest", env.disk, env.source]);
    // Read while it runs (as blaine() does): output read only after the exit has come back empty on a loaded machine.
    const firstResult = Promise.all([first.exited, new Response(first.stdout).text(), new Response(first.stderr).text()]);
    await waitFor(() => existsSync(`${env!.db}.lock`), 20_000, "the first run to take its lock");
    const second = await blaine(["run", "--db", copy, "--dest", env.disk, env.source]);
    const [firstExit, firstOut, firstErr] = await firstResult;
    const runs = [
      { run: "first", exitCode: firstExit, stdout: firstOut, stderr: firstErr },
      { run: "second", exitCode: second.exitCode, stdout: second.stdout, stderr: second.stderr },
    ];
    // Whole results compared (on copies: toMatchObject writes its matchers into what it received), so a failure
    // shows each run's own words, stdout too: per-file errors are printed there.
    for (const result of runs.filter((run) => run.exitCode !== 0)) {
      const explained = expect.stringMatching(/catalog .* locked by another process[^]*another copy of the host catalog/);
      expect({ ...result }).toEqual({ ...result, stderr: explained });
      expect(result.stderr).not.toMatch(/^blaine: database is locked$/m);
      expect(result.stdout).not.toContain("database is locked");
    }
  });
});

describe("smaller catalog matters", () => {
  test("issue 12.12: blaine ls | head ends quietly, without an EPIPE stack trace", async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 800; i++) many[`file-with-a-longish-name-${i}`] = `${i}`;
    env = await archiveEnv({ many });
    expect((await env.run()).exitCode).toBe(0);
    const bin = join(import.meta.dir, "..", "bin", "blaine.ts");
    for (const json of [[], ["--json"]]) {
      const shell = Bun.spawnSync(["bash", "-c", `bun ${bin} ls --db "$1" ${json.join(" ")} | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`, "sh", env.db]);
      expect(shell.stderr.toString()).toBe("");
      expect(shell.stdout.toString().trim()).toBe("0");
    }
  });

  test("issue 12.12: status, ls and disk list answer at once while a run is writing the catalog (its reading copy), saying so", async () => {
    const big: Record<string, { bytes: number; seed: number }> = {};
    for (let i = 0; i < 60; i++) big[`f${i}`] = { bytes: 2_000_000, seed: i + 1 };
    env = await archiveEnv({ small: "first", big });
    const e = env;
    // The run stops itself once it has committed its files, still holding the catalog (a fast machine finishes
    // a run of this size before a reader could start, so waiting for files on the disk raced with its end).
    const run = spawnBlaine(["run", "--db", e.db, "--dest", e.disk, e.source], { env: { BLAINE_STOP_AT: "after-commit" } });
    const stopped = () => readFileSync(`/proc/${run.pid}/stat`, "utf8").split(") ")[1]?.startsWith("T") ?? false;
    try {
      await waitFor(() => run.exitCode !== null || stopped(), 60_000, "the run to stop after its commit");
      expect(run.exitCode).toBeNull();
      expect(existsSync(`${e.db}.lock`)).toBe(true);
      expect(existsSync(e.onDisk("big"))).toBe(true);
      for (const command of [["status"], ["ls"], ["disk", "list"]]) {
        const started = Date.now();
        const result = await e.cli(...command, "--json");
        const elapsed = Date.now() - started;
        expect(result.exitCode).toBe(0);
        expect(result.stderr).not.toContain("busy");
        expect(elapsed).toBeLessThan(4_000);
        if (command[0] === "status") {
          expect(result.json.readingCopy).toContain("is writing host catalog");
          expect(run.exitCode).toBeNull();
        }
      }
    } finally {
      if (run.exitCode === null) process.kill(run.pid, "SIGCONT");
      expect(await run.exited).toBe(0);
    }
    expect(existsSync(`${e.db}.reading-copy`)).toBe(false);
    expect((await e.cli("status", "--json")).json).toMatchObject({ files: 61, readingCopy: null });
  });

  test("issue 12.12: the host catalog, its copies on the disks and a rebuilt one are readable by their owner only (0600)", async () => {
    env = await archiveEnv(tree());
    expect(statSync(env.db).mode & 0o777).toBe(0o600);
    expect((await env.run()).exitCode).toBe(0);
    expect(statSync(env.db).mode & 0o777).toBe(0o600);
    expect(statSync(join(env.disk, ".blaine", "host-catalog.db")).mode & 0o777).toBe(0o600);
    const rebuilt = join(env.root, "rebuilt.db");
    expect((await blaine(["catalog", "rebuild", "--db", rebuilt, env.disk])).exitCode).toBe(0);
    expect(statSync(rebuilt).mode & 0o777).toBe(0o600);
  });

  test("issue 12.12: the empty journals a deferred-action run killed with kill -9 leaves (disk and host catalog) are removed by the next command", async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`f${i}`] = `content ${i}`;
    const multi = await multiDiskEnv({ dir: many });
    try {
      const A = await multi.initDisk("A", 16 << 20);
      const C = await multi.initDisk("C", 16 << 20);
      expect((await multi.run([A], "--reserve", "0")).exitCode).toBe(0);
      renameSync(multi.path("dir"), multi.path("renamed"));
      expect((await multi.run([C], "--reserve", "0")).exitCode).toBe(0);
      // A comes back; applying its queue is killed after its first transaction.
      await blaineKilledAt("after-commit:1", ["verify", "--db", multi.db, "--dest", A]);
      const journals = [join(A, ".blaine", "catalog.db-journal"), `${multi.db}-journal`];
      // What the kill leaves (SQLite's exclusive mode truncates its journal rather than deleting it).
      expect(journals.filter((journal) => existsSync(journal)).length).toBeGreaterThan(0);
      const verified = await multi.cli(["verify", "--json"], [A, C]);
      expect(verified.exitCode).toBe(0);
      for (const journal of journals) expect(existsSync(journal)).toBe(false);
      const { onFileSystem, inCatalog } = diskContents(A);
      expect(onFileSystem).toEqual(inCatalog);
      const to = join(multi.root, "restored");
      expect((await multi.cli(["restore", multi.source, "--to", to, "--json"], [A])).exitCode).toBe(0);
      expect(filesOf(snapshotTree(join(to, multi.source)))).toEqual(filesOf(snapshotTree(multi.source)));
    } finally {
      multi.cleanup();
    }
  });
});

describe("issue 11: what a user sees", () => {
  test("issue 11: status without its catalog names the file and mentions catalog rebuild", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    rmSync(env.db);
    const status = await env.cli("status");
    expect(status.exitCode).toBe(2);
    expect(status.stderr).toContain(`host catalog ${env.db} does not exist`);
    expect(status.stderr).toContain(`blaine catalog rebuild --db ${env.db} DISK-DIR`);
  });

  test("issue 11: ls --json is one object like every other command's output", async () => {
    env = await archiveEnv(tree());
    expect((await env.run()).exitCode).toBe(0);
    const listed = await env.cli("ls", "--json");
    expect(listed.exitCode).toBe(0);
    expect(Object.keys(listed.json)).toEqual(["files"]);
    expect(listed.json.files.map((row: { path: string }) => row.path)).toEqual(
      ["movies/film.mkv", "movies/notes.txt", "other/dup.mkv", "other/link", "readme.txt"].map((path) => join(env!.source, path)),
    );
    const none = await env.cli("ls", "--json", join(env.source, "nothing-here*"));
    expect(none.json).toEqual({ files: [] });
  });
});

