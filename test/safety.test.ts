import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine, isStopped, spawnBlaine, waitFor, whyNotAsNobody } from "./helpers/cli.ts";
import { filesOf, snapshotTree, tempDir, type TreeSpec } from "./helpers/fixture.ts";
import { writeFileAtomic } from "../lib/fs/atomic.ts";
import { writerTempName } from "../lib/fs/dead-temps.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { canMount, mountTmpfs } from "./helpers/mounts.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
  env?.cleanup();
  env = undefined;
});

function manyFiles(count: number, bytes = 2000): TreeSpec {
  const tree: TreeSpec = {};
  for (let i = 0; i < count; i++) tree[`f${String(i).padStart(4, "0")}`] = { bytes, seed: i + 1 };
  return tree;
}

describe("deletion safety stop", () => {
  test("more deletions than the default limit: nothing deleted, exit 2, says why", async () => {
    env = await archiveEnv(manyFiles(30, 10));
    await env.run();
    for (let i = 0; i < 10; i++) rmSync(join(env.source, `f${String(i).padStart(4, "0")}`));
    const stopped = await env.run();
    expect(stopped.exitCode).toBe(2);
    expect(stopped.json.deleted).toBe(0);
    expect(stopped.json.safetyStop).toMatch(/would delete 10 archived files, more than the limit of 3/);
    expect(existsSync(env.onDisk("f0000"))).toBe(true);
    expect((await env.cli("ls", "--json")).json.files).toHaveLength(30);
    const kept = await env.run("--keep-deleted");
    expect(kept.exitCode).toBe(0);
    expect(existsSync(env.onDisk("f0000"))).toBe(true);
    const allowed = await env.run("--max-delete", "10");
    expect(allowed.exitCode).toBe(0);
    expect(allowed.json.deleted).toBe(10);
    expect(existsSync(env.onDisk("f0000"))).toBe(false);
    expect((await env.verify()).exitCode).toBe(0);
  });
});

describe("one writer at a time", () => {
  test("a second run on a locked catalog exits 1 naming the holder's pid", async () => {
    env = await archiveEnv({ f: "1" });
    const holder = Bun.spawn(["sleep", "30"]);
    cleanups.push(() => holder.kill());
    writeFileSync(`${env.db}.lock`, `${holder.pid}\n`);
    const result = await env.run();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`catalog is locked by pid ${holder.pid}`);
  });

  test("a lock left by a killed run is taken over", async () => {
    env = await archiveEnv({ f: "1" });
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    writeFileSync(`${env.db}.lock`, `${dead.pid}\n`);
    const result = await env.run();
    expect(result.exitCode).toBe(0);
    expect(existsSync(`${env.db}.lock`)).toBe(false);
  });

  test("kill -9 just after the lock is taken: the lock and its temp are left; the next run removes the temp (a live writer's stays) and takes the lock over", async () => {
    env = await archiveEnv({ f: "1" });
    const lockFiles = () => readdirSync(env!.root).filter((name) => name.includes("catalog.db.lock")).sort();
    await blaineKilledAt("catalog-lock-taken:1", ["run", "--db", env.db, "--dest", env.disk, env.source]);
    expect(lockFiles()).toHaveLength(2);
    expect(lockFiles()).toContain("catalog.db.lock");
    // A writer taking the lock right now (this test's process: alive) keeps its temp.
    const live = writerTempName(".catalog.db.lock.");
    writeFileSync(join(env.root, live), `${process.pid}\n`);
    const result = await env.run();
    expect(result.exitCode).toBe(0);
    expect(lockFiles()).toEqual([live]);
  });

  test("two real runs at once: the second, started while the first holds the catalog, fails with the lock message naming the first's pid", async () => {
    env = await archiveEnv(manyFiles(50));
    // The first run stops itself after its first copy, holding the lock: the second surely runs while it does.
    const first = spawnBlaine(["run", "--db", env.db, "--dest", env.disk, env.source], { env: { BLAINE_STOP_AT: "after-copy" } });
    cleanups.push(() => first.kill("SIGKILL"));
    await waitFor(() => isStopped(first.pid) || first.exitCode !== null, 60_000, "the first run to stop after a copy");
    expect(first.exitCode).toBeNull();
    expect(readFileSync(`${env.db}.lock`, "utf8").trim()).toBe(String(first.pid));
    const second = await env.run();
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(`catalog is locked by pid ${first.pid}`);
    // The first was still stopped when the second ended: the two overlapped.
    expect(isStopped(first.pid)).toBe(true);
    process.kill(first.pid, "SIGCONT");
    expect(await first.exited).toBe(0);
    const third = await env.run();
    expect(third.exitCode).toBe(0);
    expect(third.json.unchanged).toBe(50);
  });
});

describe("a disk that fills up", () => {
  test.skipIf(!canMount())("a size-limited tmpfs: what fits is stored, the rest is not started, exit 3 says how much is left", async () => {
    const dir = join("/tmp", `blaine-full-${process.pid}`);
    const unmount = mountTmpfs(dir, "3m");
    cleanups.push(() => {
      unmount();
      // The mountpoint, empty once unmounted (rmdir removes nothing that holds a file).
      try {
        rmdirSync(dir);
      } catch {
        // Still mounted or not empty: left for a person to look at.
      }
    });
    env = await archiveEnv({ ...manyFiles(12, 400_000) }, { disk: dir });
    const run = await env.run("--reserve", "0");
    expect(run.exitCode).toBe(3);
    expect(run.json.notStored.files).toBeGreaterThan(0);
    expect(run.json.new).toBeGreaterThan(3);
    expect(run.json.new + run.json.notStored.files).toBe(12);
    expect(run.stderr).toMatch(/did not fit/);
    expect(run.stderr).toMatch(/A new disk is needed/);
    // What was stored is complete and verified; no temp files are left behind.
    expect((await env.verify()).exitCode).toBe(0);
    expect(readdirSync(join(dir, ".blaine", "tmp"))).toEqual([]);
  });
  if (!canMount()) console.log("skipped tmpfs test: needs root and mount permission; the --capacity test covers the logic");

  test("--capacity limits a plain directory the same way", async () => {
    env = await archiveEnv(manyFiles(10, 100_000));
    const run = await env.run("--capacity", "450K");
    expect(run.exitCode).toBe(3);
    expect(run.json.new).toBe(4);
    expect(run.json.notStored).toEqual({ files: 6, bytes: 600_000 });
    const more = await env.run("--capacity", "2M");
    expect(more.exitCode).toBe(0);
    expect(more.json.new).toBe(6);
    const to = join(env.root, "r");
    expect((await env.restore(to)).exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source)));
  });
});

describe("atomic writes on a full disk", () => {
  test.skipIf(!canMount())("writeFileAtomic fails with ENOSPC, keeps the old content and leaves no temp file", () => {
    const dir = tempDir();
    const unmount = mountTmpfs(dir.path, "256k");
    try {
      const target = join(dir.path, "blaine.toml");
      writeFileAtomic(target, "old = true\n");
      expect(() => writeFileAtomic(target, new Uint8Array(1024 * 1024))).toThrow(/ENOSPC|no space/i);
      expect(readFileSync(target, "utf8")).toBe("old = true\n");
      expect(readdirSync(dir.path)).toEqual(["blaine.toml"]);
    } finally {
      unmount();
      dir.cleanup();
    }
  });
});

const notAsNobody = whyNotAsNobody();
if (notAsNobody) console.log(`skipped unreadable-directory test: ${notAsNobody}`);

describe("a directory that cannot be read", () => {
  test.skipIf(notAsNobody !== undefined)("is reported, and what the archive holds under it is kept, not deleted", async () => {
    const dir = tempDir();
    try {
      const { chownSync, chmodSync, mkdirSync: mkdir } = await import("node:fs");
      const home = join(dir.path, "home");
      mkdir(join(dir.path, "src", "locked"), { recursive: true });
      mkdir(join(dir.path, "src", "open"), { recursive: true });
      mkdir(home);
      writeFileSync(join(dir.path, "src", "locked", "a.mkv"), "film a");
      writeFileSync(join(dir.path, "src", "locked", "b.mkv"), "film b");
      writeFileSync(join(dir.path, "src", "open", "c.mkv"), "film c");
      for (const path of [dir.path, home, join(dir.path, "src"), join(dir.path, "src", "locked"), join(dir.path, "src", "open")]) chownSync(path, 65534, 65534);
      chmodSync(dir.path, 0o755);
      const nobody = (...args: string[]) => blaine(args, { asNobody: true, env: { HOME: home } });
      const db = join(dir.path, "catalog.db");
      const disk = join(dir.path, "disk");
      const source = join(dir.path, "src");
      expect((await nobody("disk", "init", disk, "--label", "A", "--db", db)).exitCode).toBe(0);
      expect((await nobody("run", "--db", db, "--dest", disk, "--json", source)).json.new).toBe(3);
      chmodSync(join(source, "locked"), 0o000);
      const again = await nobody("run", "--db", db, "--dest", disk, "--json", "--max-delete", "100", source);
      chmodSync(join(source, "locked"), 0o755);
      expect(again.json.deleted).toBe(0);
      expect(again.json.errors.map((error: { path: string }) => error.path)).toEqual([join(source, "locked")]);
      expect(again.exitCode).toBe(1);
      expect(readFileSync(join(disk, source, "locked", "a.mkv"), "utf8")).toBe("film a");
      const third = await nobody("run", "--db", db, "--dest", disk, "--json", source);
      expect(third.json.unchanged).toBe(3);
      expect(third.json.deleted).toBe(0);
    } finally {
      dir.cleanup();
    }
  });
});
