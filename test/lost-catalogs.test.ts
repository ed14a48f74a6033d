import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { diskContents, multiDiskEnv } from "./helpers/multi-disk-env.ts";
import { blaine } from "./helpers/cli.ts";
import { seededBytes, snapshotTree, tempDir } from "./helpers/fixture.ts";

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
    writeFileSync(join(env.source, "third.mkv"), film);
    const run = await env.run();
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ renamed: 2, new: 1, deleted: 0 });
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
