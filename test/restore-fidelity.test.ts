import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { filesOf, snapshotTree, type TreeSpec } from "./helpers/fixture.ts";
import { multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";
import { canMount, cipherMissing, mountTmpfs } from "./helpers/mounts.ts";
import { blaine } from "./helpers/cli.ts";
import { seededBytes, tempDir } from "./helpers/fixture.ts";
import { createRecoverySet } from "../lib/par2/create.ts";
import { exactMtime } from "../lib/fs/exact-mtime.ts";

// Several real CLI runs per test.
setDefaultTimeout(120_000);

let multi: MultiDiskEnv | undefined;
let env: ArchiveEnv | undefined;
afterEach(() => {
  multi?.cleanup();
  multi = undefined;
  env?.cleanup();
  env = undefined;
});

function collection(count: number, bytes: number): TreeSpec {
  const spec: TreeSpec = {};
  for (let i = 0; i < count; i++) spec[`f${String(i).padStart(2, "0")}`] = { bytes, seed: 100 + i };
  return { coll: spec };
}

describe("restore from disks mounted one at a time", () => {
  test("issue 11.6: restoring with only disk A, then only disk B, finishes (exit 0): files already restored count as done", async () => {
    multi = await multiDiskEnv(collection(12, 50_000));
    const e = multi;
    const A = await e.initDisk("A", 400_000);
    const B = await e.initDisk("B", 2_000_000);
    const run = await e.run([A, B], "--reserve", "50K");
    expect(run.exitCode).toBe(0);
    const to = join(e.root, "restored");

    const first = await e.cli(["restore", e.source, "--to", to, "--json"], [A]);
    expect(first.exitCode).toBe(3);
    expect(first.json.disksNeeded.map((disk: { label: string }) => disk.label)).toEqual(["B"]);
    expect(first.json.restored).toBeGreaterThan(0);

    const second = await e.cli(["restore", e.source, "--to", to, "--json"], [B]);
    expect(second.json.disksNeeded).toEqual([]);
    expect(second.json.skipped).toBe(first.json.restored);
    expect(second.exitCode).toBe(0);
    expect(second.stdout + second.stderr).not.toContain("Still needed");
    expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));

    // Once everything is there, a restore with no disk mounted has nothing left to do either.
    const none = await e.cli(["restore", e.source, "--to", to, "--json"], []);
    expect(none.json.disksNeeded).toEqual([]);
    expect(none.exitCode).toBe(0);
  });
});

describe("hardlinks", () => {
  test("issue 11.13: hardlinked symlinks are one inode on the disk and come back from a restore as one inode", async () => {
    env = await archiveEnv({ target: "data", dir: { link: { symlink: "../target" } }, other: { symlink: "target" } });
    const e = env;
    // link(2) makes a second name of the symlink itself (it does not follow it).
    linkSync(join(e.source, "dir/link"), join(e.source, "second"));
    linkSync(join(e.source, "dir/link"), join(e.source, "dir/third"));
    expect(lstatSync(join(e.source, "second")).nlink).toBe(3);
    expect((await e.run()).exitCode).toBe(0);

    const inodeOf = (root: string, relative: string) => lstatSync(join(root, relative)).ino;
    const names = ["dir/link", "second", "dir/third"];
    expect(new Set(names.map((name) => inodeOf(e.onDisk(), name))).size).toBe(1);
    expect(inodeOf(e.onDisk(), "other")).not.toBe(inodeOf(e.onDisk(), "second"));

    const to = join(e.root, "restored");
    const restored = await e.restore(to);
    expect(restored.exitCode).toBe(0);
    const back = join(to, e.source);
    for (const name of names) {
      expect(lstatSync(join(back, name)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(back, name))).toBe("../target");
    }
    expect(new Set(names.map((name) => inodeOf(back, name))).size).toBe(1);
    expect(lstatSync(join(back, "second")).nlink).toBe(3);
    expect(lstatSync(join(back, "other")).nlink).toBe(1);
    expect(filesOf(snapshotTree(back))).toEqual(filesOf(snapshotTree(e.source)));
  });

  test("issue 11.13: a directory holding hardlinked symlinks is renamed: both names follow, nothing fails or is copied", async () => {
    env = await archiveEnv({ M: { A: { t: "data" }, first: { symlink: "A/t" } } });
    const e = env;
    linkSync(join(e.source, "M/first"), join(e.source, "M/second"));
    expect((await e.run()).exitCode).toBe(0);
    renameSync(join(e.source, "M"), join(e.source, "N"));
    const moved = await e.run();
    expect(moved.json.errors).toEqual([]);
    expect(moved.exitCode).toBe(0);
    expect(moved.json.bytesCopied).toBe(0);
    expect(lstatSync(e.onDisk("N/first")).ino).toBe(lstatSync(e.onDisk("N/second")).ino);
    expect(existsSync(e.onDisk("M"))).toBe(false);
    const to = join(e.root, "restored");
    expect((await e.restore(to)).exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
  });
});

/** Sets a path's mtime (not following a symlink) to `stamp`, seconds with nine decimals, exactly. */
function touchExact(path: string, stamp: string): void {
  const touched = Bun.spawnSync(["touch", "-h", "-m", "-d", `@${stamp}`, path]);
  if (touched.exitCode !== 0) throw new Error(`touch ${path}: ${touched.stderr}`);
}

/** A path's mtime in nanoseconds, exactly (lstat). */
const mtimeNs = (path: string): bigint => lstatSync(path, { bigint: true }).mtimeNs;

describe("mtimes", () => {
  test("the catalog's (mtimeMs, mtimeNsec) pair gives the exact time; a row without mtimeNsec, or a pair that disagrees, the nearest mtimeMs allows", () => {
    expect(exactMtime(1_700_000_000_123.456789, 123_456_789)).toEqual({ sec: 1_700_000_000, nsec: 123_456_789 });
    expect(exactMtime(1_600_000_000_999.999999, 999_999_999)).toEqual({ sec: 1_600_000_000, nsec: 999_999_999 });
    expect(exactMtime(-1500.5, 499_500_000)).toEqual({ sec: -2, nsec: 499_500_000 });
    const nearest = exactMtime(1_700_000_000_123.456789, null);
    expect(nearest.sec).toBe(1_700_000_000);
    expect(Math.abs(nearest.nsec - 123_456_789)).toBeLessThan(1000);
    expect(exactMtime(1_700_000_000_500, 123_456_789)).toEqual({ sec: 1_700_000_000, nsec: 500_000_000 });
  });

  const hasDc3dd = Bun.which("dc3dd") !== null;
  if (!hasDc3dd) console.log("dc3dd is not installed: the exact-mtime test runs with the built-in copier only");
  test.each(hasDc3dd ? ["builtin", "dc3dd"] : ["builtin"])(
    "issue 11 (mtimes): the disk copies, the catalog and a restore keep mtimes to the nanosecond (copier %s)",
    async (copier) => {
      env = await archiveEnv({ small: "small", large: { bytes: 600_000, seed: 7 }, twin: { hardlinkTo: "small" }, link: { symlink: "small" } });
      const e = env;
      // Odd nanoseconds that a double of milliseconds (or of seconds) cannot hold.
      const stamps: Record<string, string> = {
        small: "1700000000.123456789",
        large: "1234567890.987654321",
        link: "1600000000.999999999",
      };
      for (const [name, stamp] of Object.entries(stamps)) touchExact(join(e.source, name), stamp);
      const expected = (name: string) => BigInt(stamps[name].replace(".", ""));
      expect(mtimeNs(join(e.source, "large"))).toBe(expected("large"));
      const run = await e.run("--copier", copier);
      expect(run.exitCode).toBe(0);

      for (const name of Object.keys(stamps)) expect({ name, ns: mtimeNs(e.onDisk(name)) }).toEqual({ name, ns: expected(name) });
      const catalog = new Database(e.db, { readonly: true });
      const rows = catalog.query("SELECT path, mtime_nsec AS nsec FROM files ORDER BY path").all() as { path: string; nsec: number }[];
      catalog.close();
      expect(rows.map((row) => [row.path.slice(e.source.length + 1), row.nsec])).toEqual([
        ["large", 987654321],
        ["link", 999999999],
        ["small", 123456789],
        ["twin", 123456789],
      ]);

      const diskCatalog = new Database(join(e.disk, ".blaine", "catalog.db"), { readonly: true });
      const entries = diskCatalog.query("SELECT mtime_nsec AS nsec FROM entries ORDER BY path").all() as { nsec: number }[];
      diskCatalog.close();
      expect(entries.map((row) => row.nsec)).toEqual(rows.map((row) => row.nsec));

      const to = join(e.root, "restored");
      const restored = await e.restore(to);
      expect(restored.exitCode).toBe(0);
      const back = join(to, e.source);
      for (const name of Object.keys(stamps)) expect({ name, ns: mtimeNs(join(back, name)) }).toEqual({ name, ns: expected(name) });
      expect(mtimeNs(join(back, "twin"))).toBe(expected("small"));
      // A second restore takes them all as done.
      const again = await e.restore(to);
      expect(again.json.skipped).toBe(4);
      expect((await e.verify()).exitCode).toBe(0);
    },
  );
});

/** A sparse file of `size` bytes holding `chunks` of data at their offsets, the rest holes. */
function writeSparse(path: string, size: number, chunks: [offset: number, data: Uint8Array][]): void {
  const fd = openSync(path, "w");
  try {
    for (const [offset, data] of chunks) writeSync(fd, data, 0, data.length, offset);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** sha1 of a file read whole, in chunks (holes read as zeros). */
function sha1OfFile(path: string): string {
  const hasher = new Bun.CryptoHasher("sha1");
  const fd = openSync(path, "r");
  const buffer = Buffer.allocUnsafe(8 << 20);
  try {
    for (;;) {
      const read = require("node:fs").readSync(fd, buffer, 0, buffer.length, null) as number;
      if (read === 0) break;
      hasher.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return hasher.digest("hex");
}

describe("sparse files", () => {
  test("issue 12.9: a sparse file's PAR2 set, made without reading its holes, is byte for byte the set of the same content written dense", async () => {
    const dir = tempDir("blaine-sparse-par2-");
    try {
      const MiB = 1024 * 1024;
      const chunks: [number, Uint8Array][] = [[5, seededBytes(7000, 4)], [20 * MiB + 3, seededBytes(70_000, 5)], [64 * MiB - 10, seededBytes(10, 6)]];
      mkdirSync(join(dir.path, "sparse"));
      mkdirSync(join(dir.path, "dense"));
      writeSparse(join(dir.path, "sparse", "img"), 64 * MiB, chunks);
      const dense = new Uint8Array(64 * MiB);
      for (const [offset, data] of chunks) dense.set(data, offset);
      await Bun.write(join(dir.path, "dense", "img"), dense);
      expect(statSync(join(dir.path, "sparse", "img")).blocks * 512).toBeLessThan(MiB);
      const options = { redundancy: 10, blockCount: 100, recoveryCount: 3, sync: false };
      const sparseSet = await createRecoverySet(join(dir.path, "sparse", "set.par2"), { files: [{ path: join(dir.path, "sparse", "img"), name: "img" }], ...options });
      const denseSet = await createRecoverySet(join(dir.path, "dense", "set.par2"), { files: [{ path: join(dir.path, "dense", "img"), name: "img" }], ...options });
      expect(sparseSet.paths.map((path) => path.replace("/sparse/", "/"))).toEqual(denseSet.paths.map((path) => path.replace("/dense/", "/")));
      sparseSet.paths.forEach((path, i) => expect(Bun.hash(readFileSync(path))).toBe(Bun.hash(readFileSync(denseSet.paths[i]))));
    } finally {
      dir.cleanup();
    }
  });

  const mountable = canMount();
  if (!mountable) console.log("skipped sparse-file test: it needs a 64 MB tmpfs disk (root and mount)");
  test.skipIf(!mountable)("issue 12.9: a 1 GiB sparse file holding a few KB is archived on a 64 MB disk, takes little space, verifies and restores sparse", async () => {
    const GiB = 1024 * 1024 * 1024;
    const unmounts: (() => void)[] = [];
    try {
      const base = join(require("node:os").tmpdir(), `blaine-sparse-${process.pid}`);
      const disk = join(base, "disk");
      const restoreDisk = join(base, "restore");
      unmounts.push(mountTmpfs(disk, "64m"));
      unmounts.push(mountTmpfs(restoreDisk, "64m"));
      env = await archiveEnv({ plain: "plain" }, { disk });
      const e = env;
      const sparse = join(e.source, "vm.img");
      writeSparse(sparse, GiB, [
        [0, seededBytes(3000, 1)],
        [300 * 1024 * 1024 + 17, seededBytes(5000, 2)],
        [GiB - 4096, seededBytes(4096, 3)],
      ]);
      expect(statSync(sparse).blocks * 512).toBeLessThan(1024 * 1024);
      const sourceHash = sha1OfFile(sparse);

      const run = await e.run();
      expect(run.json.errors).toEqual([]);
      expect(run.exitCode).toBe(0);
      const onDisk = statSync(e.onDisk("vm.img"));
      expect(onDisk.size).toBe(GiB);
      // Data, parity and catalogs together: a few MB of the 64.
      expect(onDisk.blocks * 512).toBeLessThan(1024 * 1024);
      const used = Bun.spawnSync(["df", "-B1", "--output=used", disk]).stdout.toString().trim().split("\n").pop()!;
      expect(Number(used)).toBeLessThan(16 * 1024 * 1024);
      expect(sha1OfFile(e.onDisk("vm.img"))).toBe(sourceHash);
      const parity = readdirSync(join(disk, ".blaine", "parity"), { recursive: true }) as string[];
      expect(parity.some((name) => name.endsWith(".par2"))).toBe(true);

      const verified = await e.verify();
      expect(verified.exitCode).toBe(0);

      mkdirSync(join(restoreDisk, "to"));
      const to = join(restoreDisk, "to");
      const restored = await e.restore(to);
      expect(restored.exitCode).toBe(0);
      const back = join(to, e.source, "vm.img");
      expect(statSync(back).size).toBe(GiB);
      expect(statSync(back).blocks * 512).toBeLessThan(1024 * 1024);
      expect(sha1OfFile(back)).toBe(sourceHash);
    } finally {
      env?.cleanup();
      env = undefined;
      while (unmounts.length) unmounts.pop()!();
      // The two mountpoints and their folder, empty once unmounted (rmdir removes nothing that holds a file).
      const base = join(require("node:os").tmpdir(), `blaine-sparse-${process.pid}`);
      for (const dir of [join(base, "disk"), join(base, "restore"), base]) {
        try {
          rmdirSync(dir);
        } catch {
          // Still mounted or not empty: left for a person to look at.
        }
      }
    }
    // Hashing and PAR2 still read the whole logical GiB (holes as zeros) a few times: slow on a loaded machine.
  }, 300_000);

  const noGocryptfs = cipherMissing("gocryptfs");
  if (noGocryptfs) console.log(`skipped encrypted sparse-file test: ${noGocryptfs}`);
  test.skipIf(noGocryptfs !== undefined)("issue 12.9: on a gocryptfs disk too, a sparse file's holes stay holes (the ciphertext is small) and come back sparse", async () => {
    const dir = tempDir("blaine-sparse-enc-");
    try {
      const MiB = 1024 * 1024;
      const source = join(dir.path, "src");
      const disk = join(dir.path, "disk");
      const db = join(dir.path, "catalog.db");
      const keyfile = join(dir.path, "key");
      mkdirSync(source);
      await Bun.write(keyfile, `pw-${crypto.randomUUID()}\n`);
      writeSparse(join(source, "img"), 256 * MiB, [[100, seededBytes(9000, 7)], [200 * MiB, seededBytes(4000, 8)]]);
      const sourceHash = sha1OfFile(join(source, "img"));
      const base = ["--db", db, "--dest", disk, "--keyfile", keyfile];
      expect((await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyfile])).exitCode).toBe(0);
      const run = await blaine(["run", ...base, "--json", source]);
      expect(run.json.errors).toEqual([]);
      expect(run.exitCode).toBe(0);
      const used = Number(Bun.spawnSync(["du", "-s", "-B1", disk]).stdout.toString().split("\t")[0]);
      expect(used).toBeLessThan(8 * MiB);
      const to = join(dir.path, "restored");
      const restored = await blaine(["restore", source, "--to", to, ...base, "--json"]);
      expect(restored.exitCode).toBe(0);
      const back = join(to, source, "img");
      expect(statSync(back).size).toBe(256 * MiB);
      expect(statSync(back).blocks * 512).toBeLessThan(MiB);
      expect(sha1OfFile(back)).toBe(sourceHash);
    } finally {
      dir.cleanup();
    }
  }, 300_000);
});
