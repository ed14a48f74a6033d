import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { blaine, spawnBlaine, waitFor } from "./helpers/cli.ts";
import { makeTree, tempDir } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";

setDefaultTimeout(120_000);

const noGocryptfs = cipherMissing("gocryptfs") !== undefined;

let dir: ReturnType<typeof tempDir> | undefined;
afterEach(() => dir?.cleanup());

/** A working directory with a source tree, as a new user would have. */
function workplace() {
  dir = tempDir();
  const source = join(dir.path, "media");
  makeTree(source, { "film.mkv": "frames", music: { "song.flac": "notes" } });
  return { root: dir.path, source, cwd: dir.path };
}

describe("blaine init --yes", () => {
  test("initialises the disk and writes blaine.toml; a plain blaine run there then works", async () => {
    const place = workplace();
    const init = await blaine(["init", "--yes", "--source", place.source, "--db", "state/catalog.db", "--disk", "disk1", "--label", "A1", "--exclude", "*.part", "--json"], { cwd: place.cwd });
    expect(init.exitCode).toBe(0);
    const toml = readFileSync(join(place.root, "blaine.toml"), "utf8");
    expect(toml).toContain(`sources = [${JSON.stringify(place.source)}]`);
    expect(toml).toContain(`db = ${JSON.stringify(join(place.root, "state/catalog.db"))}`);
    expect(toml).toContain(`exclude = ["*.part"]`);
    expect(toml).toMatch(/^# .*\n/);
    expect(JSON.parse(readFileSync(join(place.root, "disk1/.blaine/disk.json"), "utf8")).label).toBe("A1");

    const run = await blaine(["run", "--json"], { cwd: place.cwd });
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(2);
    expect(readFileSync(join(place.root, "disk1", place.source, "music/song.flac"), "utf8")).toBe("notes");
  });

  test("with --encrypt and a missing --keyfile, a random key file (mode 600) is made and written into blaine.toml", async () => {
    const place = workplace();
    const keyfile = join(place.root, "keys/blaine.key");
    const init = await blaine(["init", "--yes", "--source", place.source, "--db", "c.db", "--disk", "disk1", "--label", "E1", "--encrypt", "gocryptfs", "--keyfile", keyfile], { cwd: place.cwd });
    if (noGocryptfs) {
      console.log("skipped: encrypted init needs /dev/fuse and gocryptfs");
      return;
    }
    expect(init.exitCode).toBe(0);
    expect(statSync(keyfile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyfile, "utf8")).toMatch(/^[A-Za-z0-9+/=]{40,}\n$/);
    expect(readFileSync(join(place.root, "blaine.toml"), "utf8")).toContain(`keyfile = ${JSON.stringify(keyfile)}`);
    expect(readdirSync(join(place.root, "disk1")).sort()).toEqual([".blaine", "encrypted"]);
    expect(init.stdout + init.stderr).not.toContain(readFileSync(keyfile, "utf8").trim());
  });

  test("parity is written to blaine.toml: 10% unless told (as for blaine run), and `10` means 10% as it does for run", async () => {
    const place = workplace();
    const init = await blaine(["init", "--yes", "--source", place.source, "--db", "c.db", "--disk", "d", "--label", "P"], { cwd: place.cwd });
    expect(init.exitCode).toBe(0);
    expect(readFileSync(join(place.root, "blaine.toml"), "utf8")).toMatch(/^parity = "10%"$/m);
    expect(readFileSync(join(place.root, "blaine.toml"), "utf8")).toMatch(/^parity-engine = "builtin"$/m);
    expect((await blaine(["status"], { cwd: place.cwd })).exitCode).toBe(0);

    const bare = await blaine(["init", "--yes", "--force", "--source", place.source, "--db", "c.db", "--disk", "d2", "--label", "P2", "--parity", "5"], { cwd: place.cwd });
    expect(bare.exitCode).toBe(0);
    expect(readFileSync(join(place.root, "blaine.toml"), "utf8")).toMatch(/^parity = "5%"$/m);
    expect((await blaine(["status"], { cwd: place.cwd })).exitCode).toBe(0);
  });

  test("a label the catalog already has is refused before anything is made: no key file, no disk directory", async () => {
    const place = workplace();
    const db = join(place.root, "existing.db");
    expect((await blaine(["disk", "init", join(place.root, "first"), "--label", "D1", "--db", db])).exitCode).toBe(0);
    const before = readdirSync(place.root).sort();
    const init = await blaine(["init", "--yes", "--source", place.source, "--db", db, "--disk", "second", "--label", "D1", "--encrypt", "gocryptfs", "--keyfile", "new.key"], { cwd: place.cwd });
    expect(init.exitCode).toBe(2);
    expect(init.stderr).toContain("--label D1");
    expect(init.stderr).toContain('already has a disk labelled "D1"');
    expect(readdirSync(place.root).sort()).toEqual(before);
  });

  test.skipIf(noGocryptfs)("a step that fails after the key file was made removes what this init created, and only that", async () => {
    const place = workplace();
    // A disk directory whose cipher directory holds something else: only encrypting it finds that out.
    makeTree(join(place.root, "disk1"), { encrypted: { "not-gocryptfs": "data" } });
    const init = await blaine(["init", "--yes", "--source", place.source, "--db", "state/c.db", "--disk", "disk1", "--label", "E1", "--encrypt", "gocryptfs", "--keyfile", "keys/new.key"], { cwd: place.cwd });
    expect(init.exitCode).toBe(2);
    expect(init.stderr).toContain("not empty and holds no gocryptfs file system");
    expect(readdirSync(place.root).sort()).toEqual(["disk1", "media"]);
    expect(readdirSync(join(place.root, "disk1"))).toEqual(["encrypted"]);
    expect(readdirSync(join(place.root, "disk1/encrypted"))).toEqual(["not-gocryptfs"]);
  });

  test.skipIf(noGocryptfs)("SIGTERM while the disk is being made: what this init created is removed, and no mount is left", async () => {
    const place = workplace();
    const keyfile = join(place.root, "keys/new.key");
    const run = tempDir();
    const init = spawnBlaine(["init", "--yes", "--source", place.source, "--db", join(place.root, "state/c.db"), "--disk", join(place.root, "disk1"), "--label", "E1", "--encrypt", "gocryptfs", "--keyfile", keyfile], { env: { BLAINE_RUN_DIR: run.path } });
    // The key file is the first thing made; the disk (gocryptfs init, mount) comes after it.
    await waitFor(() => existsSync(keyfile), 30_000, "the key file");
    init.kill("SIGTERM");
    expect(await init.exited).toBe(143);
    expect(readdirSync(place.root).sort()).toEqual(["media"]);
    try {
      // No mount record (nor its mountpoint) means no mount left behind.
      expect(readdirSync(run.path)).toEqual([]);
    } finally {
      run.cleanup();
    }
  });

  test.each([
    [["--db", "c.db", "--disk", "d", "--label", "A"], "needs --source DIR"],
    [["--source", "nowhere", "--db", "c.db", "--disk", "d", "--label", "A"], "--source"],
    [["--source", "media", "--db", "c.db", "--disk", "d", "--label", "bad label"], "--label"],
    [["--source", "media", "--db", "c.db", "--disk", "d", "--label", "A", "--encrypt", "rot13"], "--encrypt"],
    [["--source", "media", "--db", "c.db", "--disk", "d", "--label", "A", "--parity", "lots"], "--parity"],
    [["--source", "media", "--db", "c.db", "--disk", "d", "--label", "A", "--copier", "cat"], "--copier"],
    [["--source", "media", "--db", "c.db", "--disk", "d", "--label", "A", "--parity", "10", "--parity-engine", "fast"], "--parity-engine"],
    [["--source", "media", "--db", "c.db", "--db", "other.db", "--disk", "d", "--label", "A"], "--db was given 2 times"],
  ])("bad answers are refused with the flag named, and nothing is written: %p", async (args, flag) => {
    const place = workplace();
    const init = await blaine(["init", "--yes", ...args], { cwd: place.cwd });
    expect(init.exitCode).toBe(2);
    expect(init.stderr).toContain(flag);
    expect(readdirSync(place.root).sort()).toEqual(["media"]);
  });

  test("an existing blaine.toml is not replaced without --force", async () => {
    const place = workplace();
    const args = ["init", "--yes", "--source", place.source, "--db", "c.db", "--disk", "d", "--label", "A"];
    expect((await blaine(args, { cwd: place.cwd })).exitCode).toBe(0);
    const again = await blaine([...args.slice(0, -4), "--disk", "d2", "--label", "B"], { cwd: place.cwd });
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain("blaine.toml exists");
  });
});

describe("without a terminal", () => {
  test("blaine init without --yes says how to run it without one (exit 2)", async () => {
    const place = workplace();
    const init = await blaine(["init"], { cwd: place.cwd });
    expect(init.exitCode).toBe(2);
    expect(init.stderr).toContain("blaine init --yes --source DIR");
  });

  test("blaine run with no configuration prints what is missing and exits 2", async () => {
    const place = workplace();
    const run = await blaine(["run"], { cwd: place.cwd });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("no catalog (--db FILE), no archive disk (--dest DIR), no sources (SOURCE…) and no blaine.toml");
    expect(run.stderr).toContain("blaine init");
  });
});
