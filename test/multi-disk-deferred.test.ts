import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, snapshotTree, type TreeSpec } from "./helpers/fixture.ts";
import { diskContents, multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";

// These tests run the real CLI many times per test (and kill it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: MultiDiskEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

async function restoreEqualsSource(e: MultiDiskEnv, disks: string[]) {
  const to = join(e.root, `restored-${Date.now()}`);
  const restored = await e.cli(["restore", e.source, "--to", to, "--json"], disks);
  expect(restored.exitCode).toBe(0);
  expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
}

/** `count` files f0, f1, … of 150 KB of distinct seeded bytes. */
function seededFiles(count: number): TreeSpec {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, { bytes: 150_000, seed: i + 1 }]));
}

async function pendingCount(e: MultiDiskEnv): Promise<number> {
  return (await e.cli(["pending", "--json"])).json.pending;
}

describe("applying deferred actions", () => {
  const CRASHES: [string, string][] = [
    ["half way through the renames", "mid-placement:700"],
    ["after the renames, before their transaction", "before-commit:1"],
    ["after the first batch's transaction", "after-commit:1"],
  ];
  test.each(CRASHES)("kill -9 %s: the next command finishes the queue, nothing is lost or done twice", async (_label, point) => {
    const many: TreeSpec = {};
    for (let i = 0; i < 1500; i++) many[`f${i}`] = `content ${i}`;
    env = await multiDiskEnv({ dir: many });
    const e = env;
    const A = await e.initDisk("A", 64_000_000);
    const C = await e.initDisk("C", 64_000_000);
    expect((await e.run([A], "--reserve", "0")).exitCode).toBe(0);
    // A goes offline; the directory is renamed: 1500 deferred renames for A.
    renameSync(e.path("dir"), e.path("renamed"));
    const offline = await e.run([C], "--reserve", "0");
    expect(offline.exitCode).toBe(0);
    expect(offline.json.renamed).toBe(1500);
    expect(offline.json.deferred.queued).toBe(1500);
    // A comes back: the queue is applied first, and killed part way.
    await blaineKilledAt(point, ["verify", "--db", e.db, "--dest", A]);
    const left = await pendingCount(e);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(1500);
    // The next command settles the killed batch and applies the rest; verify then finds everything.
    const verified = await e.cli(["verify", "--json"], [A, C]);
    expect(verified.exitCode).toBe(0);
    expect(await pendingCount(e)).toBe(0);
    const { onFileSystem, inCatalog } = diskContents(A);
    expect(onFileSystem).toEqual(inCatalog);
    expect(onFileSystem).toHaveLength(1500);
    expect(onFileSystem.every((path) => path.startsWith(`${e.source}/renamed/`))).toBe(true);
    expect(readdirSync(join(A, ".blaine", "tmp"))).toEqual([]);
    await restoreEqualsSource(e, [A, C]);
  });

  test("a rename chain a→b, b→c, c→a across two offline disks, and a rotation of three names in one run", async () => {
    env = await multiDiskEnv({ onA: { a: "content of a", p: "P".repeat(100), q: "Q".repeat(200), r: "R".repeat(300) } });
    const e = env;
    const A = await e.initDisk("A", 8_000_000);
    const B = await e.initDisk("B", 8_000_000);
    const C = await e.initDisk("C", 8_000_000);
    expect((await e.run([A], "--reserve", "0")).exitCode).toBe(0);
    mkdirSync(e.path("onB"));
    writeFileSync(e.path("onB/x"), "content of x");
    expect((await e.run([B], "--reserve", "0")).exitCode).toBe(0);
    // A and B offline, C mounted: a→b, then b→c, then c→a, each in its own run, plus x moved across directories.
    for (const [from, to] of [["a", "b"], ["b", "c"], ["c", "a"]]) {
      renameSync(e.path(`onA/${from}`), e.path(`onA/${to}`));
      const step = await e.run([C], "--reserve", "0");
      expect(step.exitCode).toBe(0);
      expect(step.json.renamed).toBe(1);
    }
    mkdirSync(e.path("elsewhere"));
    renameSync(e.path("onB/x"), e.path("elsewhere/x"));
    // A rotation p→q→r→p in one run: each name now holds another's content.
    renameSync(e.path("onA/p"), e.path("onA/tmp"));
    renameSync(e.path("onA/r"), e.path("onA/p"));
    renameSync(e.path("onA/q"), e.path("onA/r"));
    renameSync(e.path("onA/tmp"), e.path("onA/q"));
    const rotated = await e.run([C], "--reserve", "0");
    expect(rotated.exitCode).toBe(0);
    expect((await e.cli(["pending", "--disk", "A", "--json"])).json.actions.slice(0, 3).map((a: { op: string; path: string; from: string }) => [a.op, a.from, a.path])).toEqual([
      ["rename", e.path("onA/a"), e.path("onA/b")],
      ["rename", e.path("onA/b"), e.path("onA/c")],
      ["rename", e.path("onA/c"), e.path("onA/a")],
    ]);
    // Everything comes back right once A and B are mounted.
    const verified = await e.cli(["verify", "--json"], [A, B, C]);
    expect(verified.exitCode).toBe(0);
    expect(await pendingCount(e)).toBe(0);
    for (const disk of [A, B, C]) {
      const { onFileSystem, inCatalog } = diskContents(disk);
      expect(onFileSystem).toEqual(inCatalog);
    }
    expect(diskContents(B).onFileSystem).toEqual([e.path("elsewhere/x")]);
    await restoreEqualsSource(e, [A, B, C]);
  });

  test("issue 11.3: a rename whose file is no longer on the disk is done from the source instead; nothing stays stuck", async () => {
    env = await multiDiskEnv({ d: { one: "1", two: "22" } });
    const e = env;
    const A = await e.initDisk("A", 8_000_000);
    const C = await e.initDisk("C", 8_000_000);
    expect((await e.run([A], "--reserve", "0")).exitCode).toBe(0);
    renameSync(e.path("d/one"), e.path("d/one-renamed"));
    renameSync(e.path("d/two"), e.path("d/two-renamed"));
    expect((await e.run([C], "--reserve", "0")).exitCode).toBe(0);
    // Someone removed a file on A by hand while it was on the shelf.
    rmSync(e.onDisk(A, "d/one"));
    const diskCatalog = new Database(join(A, ".blaine", "catalog.db"));
    diskCatalog.query("DELETE FROM entries WHERE path = ?").run(e.path("d/one"));
    diskCatalog.close();
    const run = await e.run([A, C], "--reserve", "0");
    expect(run.json.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(await pendingCount(e)).toBe(0);
    const { onFileSystem, inCatalog } = diskContents(A);
    expect(onFileSystem).toEqual(inCatalog);
    expect(onFileSystem).toEqual([e.path("d/one-renamed"), e.path("d/two-renamed")]);
    expect((await e.cli(["verify"], [A, C])).exitCode).toBe(0);
    await restoreEqualsSource(e, [A]);
  });

  test("an action that cannot be applied stops that disk's queue with an error naming it; the rest stay queued", async () => {
    env = await multiDiskEnv({ d: { one: "1", two: "22" } });
    const e = env;
    const A = await e.initDisk("A", 8_000_000);
    const C = await e.initDisk("C", 8_000_000);
    expect((await e.run([A], "--reserve", "0")).exitCode).toBe(0);
    renameSync(e.path("d/one"), e.path("d/one-renamed"));
    renameSync(e.path("d/two"), e.path("d/two-renamed"));
    expect((await e.run([C], "--reserve", "0")).exitCode).toBe(0);
    // A's catalog says its d/one holds other content than was archived (damaged by hand while on the shelf).
    const diskCatalog = new Database(join(A, ".blaine", "catalog.db"));
    diskCatalog.query("UPDATE entries SET hash = 'sha1:0000000000000000000000000000000000000000' WHERE path = ?").run(e.path("d/one"));
    diskCatalog.close();
    const run = await e.run([A, C], "--reserve", "0");
    expect(run.exitCode).toBe(1);
    expect(run.json.errors).toEqual([
      { path: e.path("d/one-renamed"), message: expect.stringContaining(`cannot rename ${e.path("d/one")} to ${e.path("d/one-renamed")}`) },
    ]);
    const pending = (await e.cli(["pending", "--json"])).json.actions;
    expect(pending.map((action: { path: string }) => action.path)).toEqual([e.path("d/one-renamed"), e.path("d/two-renamed")]);
    expect(pending[0].lastError).toContain("other content than was archived");
  });
});

describe("mounting several disks", () => {
  test("a directory of another archive, and two directories claiming the same copy, are refused with a clear error", async () => {
    env = await multiDiskEnv({ f: "1" });
    const e = env;
    const A = await e.initDisk("A", 8_000_000);
    const foreignDb = join(e.root, "other.db");
    const foreign = join(e.root, "foreign");
    expect((await blaine(["disk", "init", foreign, "--label", "Z", "--db", foreignDb])).exitCode).toBe(0);
    const refused = await e.run([A, foreign]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`${foreign} belongs to another archive`);
    const copy = join(e.root, "copied-by-hand");
    cpSync(A, copy, { recursive: true });
    const twice = await e.run([A, copy]);
    expect(twice.exitCode).toBe(2);
    expect(twice.stderr).toMatch(/both claim to be the same copy .* of disk "A"/);
    expect(twice.stderr).toContain("blaine disk clone A DIR");
  });

  test("disks = [globs] in blaine.toml: whatever is mounted is used; with no open disk left the run exits 3 and says a new disk is needed", async () => {
    env = await multiDiskEnv(seededFiles(6));
    const e = env;
    const one = await e.initDisk("archive1", 350_000);
    const two = await e.initDisk("archive2", 350_000);
    mkdirSync(join(e.root, "archive3-not-mounted"));
    const config = join(e.root, "blaine.toml");
    writeFileSync(config, `db = "catalog.db"\ndisks = ["archive*"]\nreserve = "0"\n`);
    const run = await blaine(["run", "--config", config, "--json", e.source]);
    expect(run.exitCode).toBe(3);
    expect(run.json.filledUp).toEqual(["archive1"]);
    expect(run.json.new + run.json.notStored.files).toBe(6);
    expect(run.json.notStored.files).toBeGreaterThan(0);
    expect(run.stderr).toMatch(/A new disk is needed: blaine disk init/);
    expect(existsSync(join(one, ".blaine"))).toBe(true);
    expect(existsSync(join(two, ".blaine"))).toBe(true);
    const list = await blaine(["disk", "list", "--config", config, "--json"]);
    expect(list.json.disks.map((disk: { label: string; copies: { mounted: string | null }[] }) => [disk.label, disk.copies[0].mounted])).toEqual([
      ["archive1", one],
      ["archive2", two],
    ]);
  });

  test("with every mounted disk full, renames are still recorded; new data is not stored and the run exits 3", async () => {
    env = await multiDiskEnv(seededFiles(3));
    const e = env;
    // One file fits on A, beside the room kept for its catalogs (the host catalog's copy, a journal).
    const A = await e.initDisk("A", 400_000);
    const B = await e.initDisk("B", 1_000_000);
    const first = await e.run([A, B], "--reserve", "0");
    expect(first.exitCode).toBe(0);
    expect(first.json.filledUp).toEqual(["A"]);
    const onA = ((await e.cli(["ls", "--json"])).json.files as { path: string; disk: string }[]).find((row) => row.disk === "A")!.path;
    renameSync(onA, `${onA}-renamed`);
    writeFileSync(e.path("late"), "new data that needs a disk");
    const full = await e.run([A], "--reserve", "0");
    expect(full.exitCode).toBe(3);
    expect(full.json).toMatchObject({ renamed: 1, notStored: { files: 1 } });
    expect(full.stderr).toContain("A new disk is needed");
    expect(diskContents(A).onFileSystem).toContain(`${onA}-renamed`);
  });

  test("a file larger than any disk is an error for that file only", async () => {
    env = await multiDiskEnv({ small: "s", huge: { bytes: 600_000, seed: 7 } });
    const e = env;
    const A = await e.initDisk("A", 400_000);
    const run = await e.run([A], "--reserve", "0");
    expect(run.exitCode).toBe(1);
    expect(run.json.new).toBe(1);
    expect(run.json.notStored.files).toBe(0);
    expect(run.json.errors).toEqual([{ path: e.path("huge"), message: expect.stringContaining("larger than any mounted archive disk") }]);
    expect(run.json.filledUp).toEqual([]);
  });

  test("disk retire refuses while the disk holds the only copy of files; --force lists what is lost", async () => {
    env = await multiDiskEnv({ keep: "k" });
    const e = env;
    const A = await e.initDisk("A", 8_000_000);
    await e.initDisk("B", 8_000_000);
    expect((await e.run([A])).exitCode).toBe(0);
    const refused = await e.cli(["disk", "retire", "A"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('disk "A" holds the only copy of 1 archived file(s)');
    expect((await e.cli(["disk", "retire", "B", "--json"])).json).toMatchObject({ label: "B", lost: [] });
    const forced = await e.cli(["disk", "retire", "A", "--force", "--json"]);
    expect(forced.exitCode).toBe(0);
    expect(forced.json.lost).toEqual([e.path("keep")]);
    expect((await e.cli(["ls", "--json"])).json).toEqual({ files: [] });
    const states = (await e.cli(["disk", "list", "--json"])).json.disks.map((disk: { state: string }) => disk.state);
    expect(states).toEqual(["retired", "retired"]);
  });
});
