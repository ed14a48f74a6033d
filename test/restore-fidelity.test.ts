import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { filesOf, snapshotTree, type TreeSpec } from "./helpers/fixture.ts";
import { multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";

// Several real CLI runs per test.
setDefaultTimeout(120_000);

let multi: MultiDiskEnv | undefined;
afterEach(() => {
  multi?.cleanup();
  multi = undefined;
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
