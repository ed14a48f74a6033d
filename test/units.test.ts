import { setDefaultTimeout, describe, expect, test } from "bun:test";
import { batches, mapBounded } from "../lib/pipeline/bounded.ts";
import { globToRegExp, isExcluded, parseExclude } from "../lib/glob.ts";
import { formatBytes, parseSize } from "../lib/size.ts";
import { parseDc3ddHashLog } from "../lib/system/dc3dd.ts";
import { decodeIntents, encodeIntents, type IntentChange } from "../lib/archive/disk/intents.ts";
import type { FileRecord } from "../lib/archive/catalog/records.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

describe("parseSize", () => {
  test.each([
    ["4096", 4096],
    ["1K", 1024],
    ["1.5M", 1.5 * 1024 ** 2],
    ["10G", 10 * 1024 ** 3],
    ["2T", 2 * 1024 ** 4],
    ["3GiB", 3 * 1024 ** 3],
    ["7kb", 7 * 1024],
  ])("%s is %d bytes", (text, bytes) => expect(parseSize(text, "--x")).toBe(bytes));
  test("bad sizes name the option", () => {
    expect(() => parseSize("12Q", "--capacity")).toThrow(/--capacity/);
    expect(() => parseSize("-1", "--capacity")).toThrow(/--capacity/);
  });
  test("formatBytes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
  });
});

describe("globs", () => {
  test.each([
    ["/data/*.mkv", "/data/a.mkv", true],
    ["/data/*.mkv", "/data/sub/a.mkv", false],
    ["/data/**/*.mkv", "/data/sub/deep/a.mkv", true],
    ["/data/**/*.mkv", "/data/a.mkv", true],
    ["/data/?.txt", "/data/a.txt", true],
    ["/data/[ab].txt", "/data/c.txt", false],
    ["/da.ta/x", "/daXta/x", false],
  ])("%s against %s is %p", (glob, path, expected) => expect(globToRegExp(glob).test(path)).toBe(expected));

  test("exclude rules: names anywhere, anchored paths, directory-only", () => {
    const rules = ["*.tmp", "/top/only", "cache/", "sub/x"].map(parseExclude);
    expect(isExcluded(rules, "/src/a/b.tmp", "a/b.tmp", false)).toBe(true);
    expect(isExcluded(rules, "/src/top/only", "top/only", false)).toBe(true);
    expect(isExcluded(rules, "/src/deep/top/only", "deep/top/only", false)).toBe(false);
    expect(isExcluded(rules, "/src/a/cache", "a/cache", true)).toBe(true);
    expect(isExcluded(rules, "/src/a/cache", "a/cache", false)).toBe(false);
    expect(isExcluded(rules, "/src/q/sub/x", "q/sub/x", false)).toBe(true);
  });
});

describe("mapBounded", () => {
  test("concurrency: never more than N in flight", async () => {
    let active = 0;
    let peak = 0;
    async function* source() {
      for (let i = 0; i < 50; i++) yield i;
    }
    const results: number[] = [];
    for await (const value of mapBounded(source(), async (i) => {
      active++;
      peak = Math.max(peak, active);
      await Bun.sleep(1);
      active--;
      return i * 2;
    }, { concurrency: 4 })) results.push(value);
    expect(peak).toBe(4);
    expect(results.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
  });

  test("the producer cannot run ahead of a slow consumer", async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 1000; i++) {
        produced++;
        yield i;
      }
    }
    const iterator = mapBounded(source(), async (i) => i, { concurrency: 3 })[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    expect(produced).toBeLessThanOrEqual(2 + 3 + 1);
    await iterator.return?.(undefined);
  });

  test("an error in one item ends the stage with that error; a break closes the source", async () => {
    let closed = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const failing = mapBounded(source(), async (i) => {
      if (i === 5) throw new Error("item 5 failed");
      return i;
    }, { concurrency: 2 });
    await expect((async () => { for await (const _ of failing) {} })()).rejects.toThrow("item 5 failed");
    expect(closed).toBe(true);
  });

  test("a consumer that stops early waits for the work still running (what it holds is not reused meanwhile), then closes the source", async () => {
    let running = 0;
    let closedWhileRunning: number | undefined;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closedWhileRunning = running;
      }
    }
    const iterator = mapBounded(source(), async (i) => {
      running++;
      await Bun.sleep(i === 0 ? 0 : 20);
      running--;
      return i;
    }, { concurrency: 4 })[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBe(0);
    expect(running).toBe(3);
    await iterator.return?.(undefined);
    expect(running).toBe(0);
    expect(closedWhileRunning).toBe(0);
  });

  test("an aborted signal stops the stage", async () => {
    const controller = new AbortController();
    async function* source() {
      for (let i = 0; ; i++) yield i;
    }
    const seen: number[] = [];
    const run = (async () => {
      for await (const value of mapBounded(source(), async (i) => i, { concurrency: 2, signal: controller.signal })) {
        seen.push(value);
        if (value === 10) controller.abort(new Error("stop"));
      }
    })();
    await expect(run).rejects.toThrow("stop");
  });

  test("batches by count and by weight", async () => {
    async function* source() {
      for (let i = 1; i <= 7; i++) yield i;
    }
    const byCount: number[][] = [];
    for await (const batch of batches(source(), { size: 3 })) byCount.push(batch);
    expect(byCount).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    const byWeight: number[][] = [];
    for await (const batch of batches(source(), { size: 100, weight: (n) => n, maxWeight: 6 })) byWeight.push(batch);
    expect(byWeight).toEqual([[1, 2, 3], [4, 5], [6], [7]]);
  });
});

test("dc3dd hash log parsing takes the input's hash", () => {
  const log = "input results for file `/a':\n   2aa4f2d9720f356f2f91287d9bd998e3d8225c52 (sha1)\n\noutput results for file `/b':\n";
  expect(parseDc3ddHashLog(log, "sha1")).toBe("2aa4f2d9720f356f2f91287d9bd998e3d8225c52");
  expect(() => parseDc3ddHashLog("nothing", "sha1")).toThrow(/hash log/);
});

describe("intents", () => {
  const record = (path: string, extra: Partial<FileRecord> = {}): FileRecord => ({
    path, kind: "file", size: 4096, mtimeMs: 1_700_000_000_123.5, mtimeNsec: 123_456_789, mode: 0o100644, dev: 41, ino: 9_007_199_254_740_000, hash: "sha1:" + "ab".repeat(20), linkTarget: null, ...extra,
  });
  const changes: IntentChange[] = [
    { op: "place", path: "/data/a b/\n-é.mkv", tempName: "123-x-0", record: record("/data/a b/\n-é.mkv") },
    { op: "place", path: "/data/link", tempName: "123-x-1", record: record("/data/link", { kind: "symlink", linkTarget: "../a\u0000b", mode: 0o120777 }) },
    { op: "rename", path: "/data/new", fromPath: "/data/old", record: record("/data/new") },
    { op: "delete", path: "/data/gone" },
    { op: "place", path: "/data/twin", tempName: "123-x-2", record: record("/data/twin"), diskOnly: true },
    { op: "delete", path: "/data/twin-gone", diskOnly: true },
  ];

  test("a batch's intents read back as written", () => {
    expect(decodeIntents(encodeIntents(changes))).toEqual(changes);
  });

  test("the text is far smaller than keyed objects", () => {
    expect(encodeIntents(changes).length).toBeLessThan(JSON.stringify(changes).length * 0.7);
  });

  test("an intent written before mtimeNsec was kept reads with mtimeNsec null", () => {
    const text = encodeIntents(changes.slice(0, 1));
    const old = JSON.parse(text) as unknown[][];
    old[1] = old[1].slice(0, -1);
    expect(decodeIntents(JSON.stringify(old))[0].record?.mtimeNsec).toBeNull();
  });

  test("a row left by an earlier version (keyed objects) still reads", () => {
    expect(decodeIntents(JSON.stringify(changes))).toEqual(changes);
    expect(decodeIntents("[]")).toEqual([]);
  });
});
