import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { spawnBlaine, waitFor } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, snapshotTree, type TreeSpec } from "./helpers/fixture.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

function tree(count: number, bytes: number): TreeSpec {
  const spec: TreeSpec = {};
  for (let i = 0; i < count; i++) spec[`d${i % 7}`] = { ...((spec[`d${i % 7}`] as TreeSpec) ?? {}), [`f${i}`]: { bytes, seed: i + 1 } };
  return spec;
}

/** After a kill -9 and a clean re-run: verify passes, catalogs agree with the disk, and a restore equals the source. */
async function expectWholeAndConsistent(e: ArchiveEnv) {
  const verified = await e.verify();
  expect(verified.json.disks[0].missing).toEqual([]);
  expect(verified.json.disks[0].corrupt).toEqual([]);
  expect(verified.json.disks[0].unexpected).toEqual([]);
  expect(verified.json.disks[0].catalogMismatch).toEqual([]);
  expect(verified.exitCode).toBe(0);
  expect(readdirSync(join(e.disk, ".blaine", "tmp"))).toEqual([]);
  const to = join(e.root, `r${Date.now()}`);
  expect((await e.restore(to)).exitCode).toBe(0);
  expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
}

const CRASH_POINTS: [string, string][] = [
  ["after a temp file is written", "after-copy:40"],
  ["before the intents are committed", "before-intents:2"],
  ["after the intents, before any placement", "after-intents:2"],
  ["half way through the placements", "mid-placement:300"],
  ["after placement, before the catalog commit", "before-commit:2"],
  ["after a catalog commit", "after-commit:1"],
];

describe("kill -9 during blaine run", () => {
  test.each(CRASH_POINTS)("%s: killed there (its marker says so), the next run finishes without re-copying, verify passes", async (_label, point) => {
    env = await archiveEnv(tree(2600, 1000));
    await blaineKilledAt(point, ["run", "--db", env.db, "--dest", env.disk, env.source]);
    const again = await env.run();
    expect(again.exitCode).toBe(0);
    expect(again.json.new + again.json.unchanged).toBe(2600);
    // What was placed before the kill is kept (recovered, then unchanged); only the rest is copied, once.
    expect(again.json.bytesCopied).toBe(again.json.new * 1000);
    if (point !== "after-copy:40") expect(again.json.unchanged).toBeGreaterThan(0);
    if (point === "mid-placement:300" || point === "before-commit:2") expect(again.json.recovered).toBeGreaterThan(0);
    await expectWholeAndConsistent(env);
  });

  test("kill -9 during the deletion and rename phase", async () => {
    env = await archiveEnv(tree(300, 1000));
    await env.run();
    for (let i = 0; i < 300; i += 3) rmSync(join(env.source, `d${i % 7}`, `f${i}`));
    for (let i = 1; i < 300; i += 3) renameSync(join(env.source, `d${i % 7}`, `f${i}`), join(env.source, `d${i % 7}`, `g${i}`));
    await blaineKilledAt("mid-placement:150", ["run", "--db", env.db, "--dest", env.disk, "--max-delete", "1000", env.source]);
    const again = await env.run("--max-delete", "1000");
    expect(again.exitCode).toBe(0);
    expect(again.json.bytesCopied).toBe(0);
    await expectWholeAndConsistent(env);
  });

  test("an external kill -9 at an arbitrary moment of a larger run", async () => {
    env = await archiveEnv(tree(1500, 20_000));
    const child = spawnBlaine(["run", "--db", env.db, "--dest", env.disk, env.source]);
    // Kill once some data has been placed on the disk.
    await waitFor(() => existsSync(env!.onDisk("d0")), 30_000, "the first placed files");
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    const again = await env.run();
    expect(again.exitCode).toBe(0);
    expect(again.json.new + again.json.unchanged).toBe(1500);
    await expectWholeAndConsistent(env);
  });

  test("verify after a kill, before any re-run, settles the interrupted work first", async () => {
    env = await archiveEnv(tree(200, 1000));
    await blaineKilledAt("before-commit:1", ["run", "--db", env.db, "--dest", env.disk, env.source]);
    const verified = await env.verify();
    expect(verified.exitCode).toBe(0);
    expect(verified.json.disks[0].catalogMismatch).toEqual([]);
    expect((await env.run()).exitCode).toBe(0);
    await expectWholeAndConsistent(env);
  });
});

describe("kill -9 during blaine restore", () => {
  /** Every `.blaine-restore-*` temp below `dir`. */
  const restoreTemps = (dir: string): string[] =>
    (readdirSync(dir, { recursive: true }) as string[]).filter((path) => path.split("/").pop()!.startsWith(".blaine-restore-"));

  test("issue 12.10: a restore killed before it renames a temp leaves it; the re-run removes it and the target equals the source", async () => {
    env = await archiveEnv(tree(30, 300_000));
    expect((await env.run()).exitCode).toBe(0);
    const to = join(env.root, "restored");
    await blaineKilledAt("restore-before-rename:12", ["restore", env.source, "--to", to, "--db", env.db, "--dest", env.disk]);
    expect(restoreTemps(to).length).toBe(1);
    const again = await env.restore(to);
    expect(again.exitCode).toBe(0);
    expect(again.json.skipped).toBe(11);
    expect(restoreTemps(to)).toEqual([]);
    expect(snapshotTree(join(to, env.source))).toEqual(snapshotTree(env.source));
  });

  test("issue 12.10: an external kill -9 in the middle of a large file's copy; the re-run leaves no partial temp", async () => {
    env = await archiveEnv({ small: "small", big: new Uint8Array(randomBytes(160 * 1024 * 1024)) });
    expect((await env.run()).exitCode).toBe(0);
    const to = join(env.root, "restored");
    const child = spawnBlaine(["restore", env.source, "--to", to, "--db", env.db, "--dest", env.disk]);
    const partial = () => {
      if (!existsSync(join(to, env!.source))) return false;
      const temps = restoreTemps(to);
      return temps.length > 0 && statSync(join(to, temps[0])).size > 0;
    };
    await waitFor(partial, 60_000, "a partly written restore temp");
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    const left = restoreTemps(to);
    expect(left.length).toBe(1);
    expect(statSync(join(to, left[0])).size).toBeLessThan(160 * 1024 * 1024);
    const again = await env.restore(to);
    expect(again.exitCode).toBe(0);
    expect(restoreTemps(to)).toEqual([]);
    expect(snapshotTree(join(to, env.source))).toEqual(snapshotTree(env.source));
  });
});
