import { setDefaultTimeout, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { filesOf, makeTree, seededBytes, snapshotTree, tempDir } from "./helpers/fixture.ts";
import { s3Missing, startS3 } from "./helpers/s3rver.ts";

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

describe.skipIf(Boolean(s3Missing()))("test S3 server", () => {
  test("a GET right after a PUT's answer reads the whole object, and a GET during a PUT the old one whole, as on S3 (s3rver 3.7 answered before its file was written, and wrote it in place)", async () => {
    const s3 = await startS3();
    try {
      const badReads: { round: number; length: number }[] = [];
      for (let round = 0; round < 100; round++) {
        // Every other round a new key; else the same object overwritten.
        const key = round % 2 ? `new/${round}` : "same/object";
        const body = seededBytes(64 * 1024 + 16, round);
        await s3.client.write(key, body);
        const back = new Uint8Array(await s3.client.file(key).arrayBuffer());
        if (Buffer.compare(back, body) !== 0) badReads.push({ round, length: back.length });
      }
      expect(badReads).toEqual([]);

      // A PUT whose body's second half is held back: every GET meanwhile reads the old object whole.
      const old = seededBytes(256 * 1024, 1);
      await s3.client.write("held/object", old);
      const next = seededBytes(256 * 1024, 2);
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(next.subarray(0, 128 * 1024));
          await released;
          controller.enqueue(next.subarray(128 * 1024));
          controller.close();
        },
      });
      const put = fetch(s3.client.presign("held/object", { method: "PUT", expiresIn: 60 }), { method: "PUT", body, duplex: "half" } as RequestInit);
      const duringPut: number[] = [];
      for (let read = 0; read < 20; read++) {
        await Bun.sleep(10);
        const back = new Uint8Array(await s3.client.file("held/object").arrayBuffer());
        if (Buffer.compare(back, old) !== 0) duringPut.push(back.length);
      }
      release();
      expect((await put).status).toBe(200);
      expect(duringPut).toEqual([]);
      expect(Buffer.compare(new Uint8Array(await s3.client.file("held/object").arrayBuffer()), next)).toBe(0);
    } finally {
      s3.stop();
    }
  });
});
