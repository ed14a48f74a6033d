import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { filesOf, snapshotTree, tempDir } from "./helpers/fixture.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

const ODD_NAMES: [string, string][] = [
  ["one character", "x"],
  ["spaces", "a name with  spaces "],
  ["leading dash", "-rf --help"],
  ["unicode", "Ünïcødé 映画 🎬.mkv"],
  ["newline", "line\nbreak"],
  ["255 bytes", "n".repeat(251) + ".mkv"],
  ["glob characters", "[a]*?.txt"],
  ["backslash and quotes", "back\\slash 'q' \"qq\""],
];

describe("odd names", () => {
  test.each(ODD_NAMES)("%s: archived, listed, verified and restored byte for byte", async (_label, name) => {
    env = await archiveEnv({ dir: { [name]: `content of ${name}` } });
    const run = await env.run();
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(1);
    expect(readFileSync(env.onDisk(`dir/${name}`), "utf8")).toBe(`content of ${name}`);
    const listed = await env.cli("ls", "--json");
    expect(listed.json.files.map((row: any) => row.path)).toEqual([join(env.source, "dir", name)]);
    const to = join(env.root, "r");
    const restored = await env.restore(to, join(env.source, "dir", name));
    expect(restored.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source)));
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("a deep tree (200 levels)", async () => {
    env = await archiveEnv({});
    let dir = env.source;
    for (let i = 0; i < 200; i++) dir = join(dir, "d");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "leaf"), "deep");
    const run = await env.run();
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(1);
    const to = join(env.root, "r");
    expect((await env.restore(to)).exitCode).toBe(0);
    expect(readFileSync(join(to, dir, "leaf"), "utf8")).toBe("deep");
  });
});

describe("bad input gets a clear error naming the file or option", () => {
  test("unknown option, bad size, bad mode, bad hash and a one-value flag given twice exit 2", async () => {
    env = await archiveEnv({ f: "1" });
    const cases: [string[], RegExp][] = [
      [["--bogus"], /bogus/],
      [["--capacity", "12Q"], /--capacity/],
      [["--match", "ctime"], /--match/],
      [["--hash", "md5"], /--hash/],
      [["--max-delete", "lots"], /--max-delete/],
      [["--hash", "sha1", "--hash", "sha256"], /--hash was given 2 times/],
      [["--db", env.db], /--db was given 2 times/],
    ];
    for (const [args, message] of cases) {
      const result = await env.run(...args);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    const twoTargets = await env.cli("restore", env.source, "--to", join(env.root, "a"), "--to", join(env.root, "b"));
    expect(twoTargets.exitCode).toBe(2);
    expect(twoTargets.stderr).toContain("--to was given 2 times");
  });

  test("no catalog, no disk, missing source and a directory that is not a disk", async () => {
    const dir = tempDir();
    try {
      const noDb = await blaine(["run", dir.path]);
      expect(noDb.exitCode).toBe(2);
      expect(noDb.stderr).toMatch(/--db/);
      const absentDb = await blaine(["run", "--db", join(dir.path, "no", "such", "catalog.db"), "--dest", dir.path, dir.path]);
      expect(absentDb.exitCode).toBe(2);
      expect(absentDb.stderr).toContain(`host catalog ${join(dir.path, "no", "such", "catalog.db")} does not exist`);
      env = await archiveEnv({ f: "1" });
      const missing = await blaine(["run", "--db", env.db, "--dest", env.disk, join(dir.path, "nope")]);
      expect(missing.exitCode).toBe(2);
      expect(missing.stderr).toMatch(/nope does not exist/);
      const notDisk = await blaine(["run", "--db", env.db, "--dest", dir.path, env.source]);
      expect(notDisk.exitCode).toBe(2);
      expect(notDisk.stderr).toContain(`${dir.path} is not an archive disk`);
    } finally {
      dir.cleanup();
    }
  });

  test("disk init refuses a directory that already belongs to an archive, and a taken label", async () => {
    env = await archiveEnv({ f: "1" });
    const again = await blaine(["disk", "init", env.disk, "--label", "B", "--db", env.db]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/already belongs to an archive/);
    const otherDb = join(env.root, "other.db");
    const foreign = await blaine(["disk", "init", env.disk, "--label", "A", "--db", otherDb]);
    expect(foreign.exitCode).toBe(2);
    const taken = await blaine(["disk", "init", join(env.root, "disk2"), "--label", "A", "--db", env.db]);
    expect(taken.exitCode).toBe(2);
    expect(taken.stderr).toMatch(/--label A/);
  });

  test("a disk of another archive is refused", async () => {
    env = await archiveEnv({ f: "1" });
    const otherDb = join(env.root, "other.db");
    const otherDisk = join(env.root, "other-disk");
    expect((await blaine(["disk", "init", otherDisk, "--label", "X", "--db", otherDb])).exitCode).toBe(0);
    const result = await blaine(["run", "--db", env.db, "--dest", otherDisk, env.source]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/belongs to another archive/);
  });

  test("a corrupt catalog is named and left alone", async () => {
    env = await archiveEnv({ f: "1" });
    await env.run();
    writeFileSync(env.db, "this is not sqlite at all, just some text that is long enough".repeat(100));
    const before = readFileSync(env.db);
    const result = await env.run();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(env.db);
    expect(readFileSync(env.db)).toEqual(before);
  });

  test("blaine.toml supplies defaults, flags win, and unknown keys are refused", async () => {
    env = await archiveEnv({ keep: "k", "skip.tmp": "t" });
    writeFileSync(join(env.root, "blaine.toml"), `db = "catalog.db"\ndest = "disk"\nsources = ["src"]\nexclude = ["*.tmp"]\n`);
    const run = await blaine(["run", "--json"], { cwd: env.root });
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(1);
    const flagWins = await blaine(["run", "--json", "--hash", "sha256", "--dry-run"], { cwd: env.root });
    expect(flagWins.exitCode).toBe(0);
    // One blaine.toml for every product: the archive leaves the image's and the volume's tables to them.
    writeFileSync(join(env.root, "blaine.toml"), `db = "catalog.db"\ndest = "disk"\nsources = ["src"]\n[image]\ndb = "images.db"\n[volume]\ndb = "volumes.db"\n`);
    expect((await blaine(["run", "--json"], { cwd: env.root })).exitCode).toBe(0);
    writeFileSync(join(env.root, "bad.toml"), `colour = "blue"\n`);
    const bad = await blaine(["status", "--config", join(env.root, "bad.toml")]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("bad.toml");
    expect(bad.stderr).toContain("colour");
  });

  test("a bad value in blaine.toml is named by its file and key, not by a flag that was never given; a bad flag by the flag", async () => {
    const dir = tempDir();
    try {
      const config = join(dir.path, "blaine.toml");
      const values = { match: '"foo"', hash: '"md5"', copier: '"cp"', reserve: '"zz"', capacity: '"q"', "max-delete": '"x"', parity: '"abc"', "parity-engine": '"zz"' };
      for (const [key, value] of Object.entries(values)) {
        writeFileSync(config, `db = "catalog.db"\n${key} = ${value}\n`);
        const status = await blaine(["status", "--config", config]);
        expect(status.exitCode).toBe(2);
        expect(status.stderr).toContain(`${config}: ${key}: ${value}`);
        expect(status.stderr).not.toContain(`--${key}`);
      }
      writeFileSync(config, `db = "catalog.db"\nparity = 10\n`);
      const flag = await blaine(["run", "--dry-run", "--config", config, "--parity", "abc"]);
      expect(flag.exitCode).toBe(2);
      expect(flag.stderr).toContain(`--parity: "abc"`);
    } finally {
      dir.cleanup();
    }
  });

  test("arguments a command does not take are refused, not passed over (disk list included)", async () => {
    for (const args of [["disk", "list", "extra"], ["verify", "extra"], ["status", "extra"]]) {
      const refused = await blaine([...args, "--db", "/nonexistent/catalog.db"]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain("extra");
    }
  });

  test("every key of blaine.toml has its flag: --disks finds the disk that `disks = [...]` would", async () => {
    env = await archiveEnv({ a: "1" });
    const run = await blaine(["run", "--json", "--db", env.db, "--disks", join(env.root, "di*"), env.source]);
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(1);
    expect(readFileSync(env.onDisk("a"), "utf8")).toBe("1");
  });
});
