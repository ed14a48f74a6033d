import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { crashAt, expectDiedAt } from "./helpers/crash.ts";
import { tempDir } from "./helpers/fixture.ts";
import { writerTempName } from "../lib/fs/dead-temps.ts";
import { cipherMissing } from "./helpers/mounts.ts";

setDefaultTimeout(120_000);

const TOOLS = ["dc3dd", "par2", "parpar", "gocryptfs", "securefs", "fusermount", "ssh", "rsync"];
let env: ArchiveEnv | undefined;
afterEach(() => env?.cleanup());

/** An environment whose PATH (a bin directory made under `dir`) holds bun and nothing else: every external tool is missing. */
function onlyBunOnPath(dir: string): { PATH: string } {
  mkdirSync(join(dir, "bin"));
  symlinkSync(Bun.which("bun")!, join(dir, "bin", "bun"));
  return { PATH: join(dir, "bin") };
}

describe("blaine doctor", () => {
  test("--json lists every external tool as this machine has it, FUSE, device-mapper", async () => {
    const result = await blaine(["doctor", "--json"]);
    expect(result.exitCode).toBe(0);
    const report = result.json;
    expect(report.tools.map((tool: any) => tool.name)).toEqual(TOOLS);
    for (const tool of report.tools) {
      const program = tool.name === "fusermount" ? (Bun.which("fusermount3") ? "fusermount3" : "fusermount") : tool.name;
      expect({ name: tool.name, installed: tool.installed }).toEqual({ name: tool.name, installed: Bun.which(program) !== null });
      if (tool.installed) expect(tool.version).toMatch(/\d/);
      else expect(tool.disables).toBeString();
    }
    // The kernel lists the driver in /proc/misc only when it has it (the /dev/mapper/control node may exist without it).
    expect(report.deviceMapper.present).toBe(/\bdevice-mapper\b/.test(readFileSync("/proc/misc", "utf8")));
    const fuseExpected = existsSync("/dev/fuse") && (Bun.which("gocryptfs") !== null || Bun.which("securefs") !== null);
    expect(report.fuse.mountWorks).toBe(fuseExpected);
    expect(report.catalog).toBeNull();
  });

  test("a missing tool is reported with what it disables", async () => {
    const bin = tempDir();
    try {
      const result = await blaine(["doctor"], { env: onlyBunOnPath(bin.path) });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain("MISSING  gocryptfs: disables encrypted disks with --encrypt gocryptfs");
      expect(result.stdout).toContain("MISSING  dc3dd: disables --copier dc3dd");
      expect(result.stdout).toContain("FUSE: NOT WORKING");
    } finally {
      bin.cleanup();
    }
  });

  test("a healthy catalog and disk pass the integrity check", async () => {
    env = await archiveEnv({ "a.txt": "hello" });
    const result = await env.cli("doctor", "--json");
    expect(result.exitCode).toBe(0);
    expect(result.json.catalog).toEqual({ path: env.db, ok: true, message: "integrity check ok" });
    expect(result.json.disks).toEqual([{ dir: env.disk, label: "A", encrypted: false, ok: true, message: "disk catalog integrity check ok" }]);
  });

  test("a damaged catalog and an unreachable disk are problems (exit 1), named by path", async () => {
    const dir = tempDir();
    try {
      const db = join(dir.path, "catalog.db");
      writeFileSync(db, "this is not SQLite at all, just some text long enough to look like a header.....");
      const missing = join(dir.path, "not-mounted");
      const result = await blaine(["doctor", "--json", "--db", db, "--dest", missing]);
      expect(result.exitCode).toBe(1);
      expect(result.json.catalog.ok).toBe(false);
      expect(result.json.disks).toEqual([{ dir: missing, label: null, encrypted: false, ok: false, message: "not reachable (not mounted?)" }]);
      expect(result.json.problems.join("\n")).toContain(db);
      expect(result.json.problems.join("\n")).toContain(missing);
    } finally {
      dir.cleanup();
    }
  });
});

describe.skipIf(cipherMissing("gocryptfs") !== undefined)("blaine doctor and an encrypted disk", () => {
  test("with its key, the disk catalog inside is checked; without, doctor says what it needs", async () => {
    const dir = tempDir();
    try {
      const db = join(dir.path, "catalog.db");
      const disk = join(dir.path, "disk");
      const keyfile = join(dir.path, "key");
      writeFileSync(keyfile, "doctor's password\n");
      expect((await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyfile])).exitCode).toBe(0);
      const withKey = await blaine(["doctor", "--json", "--db", db, "--dest", disk, "--keyfile", keyfile]);
      expect(withKey.exitCode).toBe(0);
      expect(withKey.json.disks).toEqual([{ dir: disk, label: "E", encrypted: true, ok: true, message: "encrypted with gocryptfs, unlocked; disk catalog integrity check ok" }]);
      // A failure after the disk's label was read still names the disk.
      const wrongKey = join(dir.path, "wrong-key");
      writeFileSync(wrongKey, "not the password\n");
      const withWrongKey = await blaine(["doctor", "--json", "--db", db, "--dest", disk, "--keyfile", wrongKey]);
      expect(withWrongKey.exitCode).toBe(1);
      expect(withWrongKey.json.disks[0]).toMatchObject({ dir: disk, label: "E", encrypted: true, ok: false });
      expect(withWrongKey.json.disks[0].message).toContain("wrong key");
      const withoutKey = await blaine(["doctor", "--json", "--db", db, "--dest", disk]);
      expect(withoutKey.exitCode).toBe(0);
      expect(withoutKey.json.disks[0].message).toBe("encrypted with gocryptfs; give --keyfile (or BLAINE_PASSWORD) to check its catalog");
    } finally {
      dir.cleanup();
    }
  });
});

describe("blaine doctor and the parity engine", () => {
  test("a configured parity engine that is not installed is a problem (exit 1) naming what it disables; with parity off it is not", async () => {
    const dir = tempDir();
    try {
      // Neither parpar nor par2 is on this PATH.
      const env = onlyBunOnPath(dir.path);
      for (const engine of ["parpar", "par2"]) {
        writeFileSync(join(dir.path, "blaine.toml"), `parity = "10%"\nparity-engine = "${engine}"\n`);
        const result = await blaine(["doctor", "--json"], { cwd: dir.path, env });
        expect(result.exitCode).toBe(1);
        expect(result.json.problems).toEqual([expect.stringContaining(`parity-engine = ${engine} is configured but ${engine} is not installed: blaine run cannot make parity`)]);
      }
      writeFileSync(join(dir.path, "blaine.toml"), `parity = "off"\nparity-engine = "parpar"\n`);
      expect((await blaine(["doctor", "--json"], { cwd: dir.path, env })).exitCode).toBe(0);
    } finally {
      dir.cleanup();
    }
  });
});

describe.skipIf(cipherMissing("gocryptfs") !== undefined && cipherMissing("securefs") !== undefined)("blaine doctor's FUSE probe", () => {
  test("is recorded like every mount: a doctor killed with its probe mounted leaves the mount, its record and its scratch directory; the next doctor cleans up all three (a live probe's directory stays)", async () => {
    const dir = tempDir();
    try {
      const runDir = join(dir.path, "run");
      const scratch = join(dir.path, "tmp");
      mkdirSync(scratch);
      const env = { BLAINE_RUN_DIR: runDir, TMPDIR: scratch };
      const records = () => (existsSync(runDir) ? readdirSync(runDir).filter((name) => name.endsWith(".json")) : []);
      const doctorScratch = () => readdirSync(scratch).filter((name) => name.startsWith("blaine-doctor-")).sort();
      const crash = crashAt("doctor-fuse-mounted:1");
      expectDiedAt(await blaine(["doctor"], { env: { ...env, ...crash.env } }), crash, "doctor-fuse-mounted:1");
      const [recordFile] = records();
      const { mountpoint } = JSON.parse(readFileSync(join(runDir, recordFile), "utf8"));
      expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(` ${mountpoint} `);
      expect(doctorScratch()).toHaveLength(1);
      // A probe running right now (this test's process: alive) keeps its directory.
      const live = writerTempName("blaine-doctor-live.");
      mkdirSync(join(scratch, live));

      const next = await blaine(["doctor", "--json"], { env });
      expect(next.exitCode).toBe(0);
      expect(next.json.fuse.mountWorks).toBe(true);
      expect(next.json.staleMountsCleaned).toEqual([expect.stringContaining(`${mountpoint} (disk "doctor"`)]);
      expect(readdirSync(runDir)).toEqual([]);
      expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(" blaine:doctor ");
      expect(doctorScratch()).toEqual([live]);
    } finally {
      dir.cleanup();
    }
  });
});

describe("blaine doctor and disks globs", () => {
  test("disks mounted where a `disks` glob of blaine.toml points are checked; the others are not missing", async () => {
    const dir = tempDir();
    try {
      const db = join(dir.path, "catalog.db");
      expect((await blaine(["disk", "init", join(dir.path, "mnt/archive1"), "--label", "A1", "--db", db])).exitCode).toBe(0);
      mkdirSync(join(dir.path, "mnt/archive2"));
      writeFileSync(join(dir.path, "blaine.toml"), `db = "catalog.db"\ndisks = ["mnt/archive*"]\n`);
      const result = await blaine(["doctor", "--json"], { cwd: dir.path });
      expect(result.exitCode).toBe(0);
      expect(result.json.disks).toEqual([{ dir: join(dir.path, "mnt/archive1"), label: "A1", encrypted: false, ok: true, message: "disk catalog integrity check ok" }]);
    } finally {
      dir.cleanup();
    }
  });
});
