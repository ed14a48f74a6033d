import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { linkSync, lstatSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { filesOf, snapshotTree, type TreeSpec } from "./helpers/fixture.ts";
import { multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";

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
});
