import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, unlinkSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { writerTempName } from "../lib/fs/dead-temps.ts";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, snapshotTree, tempDir } from "./helpers/fixture.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

const SPEC = {
  movies: { "a.mkv": { bytes: 100_000, seed: 1 }, "b.mkv": { bytes: 50_000, seed: 2 }, "c.srt": "subs" },
  music: { "x.flac": { bytes: 20_000, seed: 3 } },
  "link.mkv": { symlink: "movies/a.mkv" },
};

describe("verify", () => {
  test("finds corrupt, missing and unexpected files and exits 4", async () => {
    env = await archiveEnv(SPEC);
    await env.run();
    expect((await env.verify()).exitCode).toBe(0);
    const corrupt = env.onDisk("movies/a.mkv");
    const data = readFileSync(corrupt);
    data[777] ^= 1;
    writeFileSync(corrupt, data);
    unlinkSync(env.onDisk("movies/c.srt"));
    writeFileSync(env.onDisk("music/stray.txt"), "not archived");
    const result = await env.verify();
    expect(result.exitCode).toBe(4);
    const disk = result.json.disks[0];
    expect(disk.corrupt.map((c: any) => c.path)).toEqual([join(env.source, "movies/a.mkv")]);
    expect(disk.missing).toEqual([join(env.source, "movies/c.srt")]);
    expect(disk.unexpected).toEqual([join(env.source, "music/stray.txt")]);
    expect(result.stderr).toContain("CORRUPT");
  });
});

describe("restore", () => {
  test("a directory, a single file and globs come back at their absolute paths", async () => {
    env = await archiveEnv(SPEC);
    await env.run();
    const to = join(env.root, "r1");
    const one = await env.restore(to, join(env.source, "movies"));
    expect(one.json.restored).toBe(3);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source, { skip: (rel) => !rel.startsWith("movies") })));
    const to2 = join(env.root, "r2");
    const glob = await env.restore(to2, `${env.source}/**/*.mkv`);
    expect(glob.json.restored).toBe(3);
    expect(Object.keys(filesOf(snapshotTree(join(to2, env.source)))).sort()).toEqual(["link.mkv", "movies/a.mkv", "movies/b.mkv"]);
    const to3 = join(env.root, "r3");
    const star = await env.restore(to3, `${env.source}/music/*`);
    expect(star.json.restored).toBe(1);
  });

  test("refuses to overwrite existing files unless --overwrite; a finished restore is not redone", async () => {
    env = await archiveEnv(SPEC);
    await env.run();
    const to = join(env.root, "r");
    mkdirSync(join(to, env.source, "music"), { recursive: true });
    writeFileSync(join(to, env.source, "music/x.flac"), "mine");
    const refused = await env.restore(to);
    expect(refused.exitCode).toBe(1);
    expect(refused.json.errors[0].message).toMatch(/--overwrite/);
    expect(readFileSync(join(to, env.source, "music/x.flac"), "utf8")).toBe("mine");
    const again = await env.restore(to);
    expect(again.json.skipped).toBe(4);
    const forced = await env.cli("restore", env.source, "--to", to, "--overwrite", "--json");
    expect(forced.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source)));
  });

  test("a damaged file is named and the restore exits 4", async () => {
    env = await archiveEnv(SPEC);
    // Without parity: with it, restore repairs the file (test/par2-parity.test.ts).
    await env.run("--parity", "off");
    const onDisk = env.onDisk("movies/b.mkv");
    const data = readFileSync(onDisk);
    data[100] ^= 0x40;
    writeFileSync(onDisk, data);
    const to = join(env.root, "r");
    const result = await env.restore(to);
    expect(result.exitCode).toBe(4);
    expect(result.json.damaged.map((d: any) => d.path)).toEqual([join(env.source, "movies/b.mkv")]);
    expect(result.stderr).toContain("DAMAGED");
    // The bytes read are kept aside, never under the file's name, where a later restore would take them as done.
    const restored = join(to, env.source, "movies/b.mkv");
    expect(existsSync(restored)).toBe(false);
    expect(readFileSync(`${restored}.blaine-damaged`)).toEqual(data);
    expect((await env.restore(to)).exitCode).toBe(4);
    // Once the disk holds good data again (e.g. after verify --repair), the same restore completes.
    writeFileSync(onDisk, readFileSync(join(env.source, "movies/b.mkv")));
    const healed = await env.restore(to);
    expect(healed.exitCode).toBe(0);
    expect(readFileSync(restored)).toEqual(readFileSync(join(env.source, "movies/b.mkv")));
  });

  test("nothing matching is a usage error", async () => {
    env = await archiveEnv(SPEC);
    await env.run();
    const result = await env.restore(join(env.root, "r"), "/no/such/path");
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("/no/such/path");
  });
});

describe("copiers, dry runs and excludes", () => {
  const hasDc3dd = Bun.which("dc3dd") !== null;
  if (!hasDc3dd) console.log("skipped dc3dd test: dc3dd is not installed (apt-get install dc3dd)");
  test.skipIf(!hasDc3dd)("--copier dc3dd gives the same catalog entries as the built-in copier", async () => {
    env = await archiveEnv(SPEC);
    const builtin = await env.run();
    expect(builtin.exitCode).toBe(0);
    const listBuiltin = (await env.cli("ls", "--json")).json.files;
    const other = await archiveEnv(SPEC);
    try {
      const viaDc3dd = await other.run("--copier", "dc3dd");
      expect(viaDc3dd.exitCode).toBe(0);
      const listDc3dd = (await other.cli("ls", "--json")).json.files;
      const strip = (rows: any[], root: string) => rows.map((row) => ({ ...row, path: row.path.slice(root.length), mtime: undefined }));
      expect(strip(listDc3dd, other.source)).toEqual(strip(listBuiltin, env.source));
      expect((await other.verify()).exitCode).toBe(0);
    } finally {
      other.cleanup();
    }
  });

  test.skipIf(!hasDc3dd)("kill -9 once dc3dd has copied: its hash log's scratch directory is left; the next dc3dd run removes it (a live writer's stays)", async () => {
    env = await archiveEnv(SPEC);
    const scratch = tempDir();
    try {
      const tmp = { TMPDIR: scratch.path };
      const dc3ddScratch = () => readdirSync(scratch.path).filter((name) => name.startsWith("blaine-dc3dd-")).sort();
      await blaineKilledAt("dc3dd-copied:1", ["run", "--copier", "dc3dd", "--db", env.db, "--dest", env.disk, env.source], { env: tmp });
      // One for each dc3dd copy in flight.
      expect(dc3ddScratch().length).toBeGreaterThan(0);
      // A dc3dd copy running right now (this test's process: alive) keeps its directory.
      const live = writerTempName("blaine-dc3dd-live.");
      mkdirSync(join(scratch.path, live));
      const again = await blaine(["run", "--copier", "dc3dd", "--db", env.db, "--dest", env.disk, env.source], { env: tmp });
      expect(again.exitCode).toBe(0);
      expect(dc3ddScratch()).toEqual([live]);
      expect((await env.verify()).exitCode).toBe(0);
    } finally {
      scratch.cleanup();
    }
  });

  test("--hash sha256 is stored and verified", async () => {
    env = await archiveEnv(SPEC);
    await env.run("--hash", "sha256");
    const rows = (await env.cli("ls", "--json")).json.files;
    expect(rows.every((row: any) => row.hash.startsWith("sha256:"))).toBe(true);
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("--dry-run changes nothing anywhere and says what it would do", async () => {
    env = await archiveEnv(SPEC);
    await env.run();
    writeFileSync(join(env.source, "new.txt"), "n");
    unlinkSync(join(env.source, "movies/c.srt"));
    const catalogBefore = readFileSync(env.db);
    const diskBefore = snapshotTree(env.disk);
    const dry = await env.run("--dry-run", "--max-delete", "9");
    expect(dry.exitCode).toBe(0);
    expect(dry.json.new).toBe(1);
    expect(dry.json.deleted).toBe(1);
    expect(dry.json.plan).toEqual([`copy ${join(env.source, "new.txt")} (1 B)`, `delete ${join(env.source, "movies/c.srt")}`]);
    expect(readFileSync(env.db)).toEqual(catalogBefore);
    expect(snapshotTree(env.disk)).toEqual(diskBefore);
    expect(existsSync(`${env.db}.lock`)).toBe(false);
  });

  test("--exclude (names, paths, directories) and --snapraid-conf exclude lines", async () => {
    env = await archiveEnv({ "a.mkv": "a", "a.tmp": "t", cache: { x: "x" }, keep: { cache: "file named cache" }, sub: { "skip.nfo": "n", "ok.nfo": "o" } });
    const conf = join(env.root, "snapraid.conf");
    writeFileSync(conf, "parity /mnt/parity/snapraid.parity\nexclude *.tmp\nexclude /sub/skip.nfo\n");
    const run = await env.run("--exclude", "cache/", "--snapraid-conf", conf);
    expect(run.exitCode).toBe(0);
    const paths = (await env.cli("ls", "--json")).json.files.map((row: any) => row.path.slice(env!.source.length + 1));
    expect(paths).toEqual(["a.mkv", "keep/cache", "sub/ok.nfo"]);
  });
});
