import { setDefaultTimeout, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { filesOf, makeTree, seededBytes, snapshotTree, tempDir } from "./helpers/fixture.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

describe("test harness", () => {
  test("makeTree builds files, dirs, symlinks and hardlinks; snapshotTree reads them back", () => {
    const dir = tempDir();
    try {
      makeTree(dir.path, { a: "x", d: { b: "yy", big: { bytes: 1000, seed: 7 } }, l: { symlink: "a" }, h: { hardlinkTo: "a" } });
      const snap = snapshotTree(dir.path, { mtimes: false });
      expect(Object.keys(snap).sort()).toEqual(["a", "d", "d/b", "d/big", "h", "l"]);
      expect(snap.l).toEqual({ type: "symlink", target: "a" });
      expect((snap.a as { link: number }).link).toBe(1);
      expect((snap.h as { link: number }).link).toBe(1);
      expect((snap["d/big"] as { size: number }).size).toBe(1000);
      expect(filesOf(snap).d).toBeUndefined();
    } finally {
      dir.cleanup();
    }
  });

  test("seededBytes is deterministic and seed-dependent", () => {
    expect(seededBytes(64, 1)).toEqual(seededBytes(64, 1));
    expect(seededBytes(64, 1)).not.toEqual(seededBytes(64, 2));
  });

  test("snapshots of different trees differ", () => {
    const a = tempDir();
    const b = tempDir();
    try {
      makeTree(join(a.path), { f: "1" });
      makeTree(join(b.path), { f: "2" });
      expect(snapshotTree(a.path)).not.toEqual(snapshotTree(b.path));
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });
});
