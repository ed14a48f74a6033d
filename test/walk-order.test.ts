import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { comparePaths } from "../lib/catalog/path-order.ts";
import { walk } from "../lib/archive/stages/walker.ts";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { makeTree, tempDir } from "./helpers/fixture.ts";

// These tests run the real CLI: Bun's 5 s default is too short on a busy machine.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

/** Names whose order differs between UTF-16 code units and UTF-8 bytes, and a directory beside a longer file name. */
const TRICKY = {
  "b.txt": "file beside a directory of the same stem",
  b: { c: "inside b", "c d": "space" },
  "\u{1F600}.jpg": "an emoji (above U+FFFF)",
  "\uF8FF.jpg": "a private-use character (U+F8FF)",
  "a-b": "dash",
};

describe("walk order", () => {
  test("comparePaths orders like SQLite's BINARY collation (UTF-8 bytes)", () => {
    const names = ["b/c", "b.txt", "\u{1F600}", "\uF8FF", "a", "a-b", "ab", "é", "z"];
    const db = new Database(":memory:");
    db.exec("CREATE TABLE t (path TEXT PRIMARY KEY)");
    for (const name of names) db.query("INSERT INTO t VALUES (?)").run(name);
    const sqliteOrder = (db.query("SELECT path FROM t ORDER BY path").all() as { path: string }[]).map((row) => row.path);
    expect([...names].sort(comparePaths)).toEqual(sqliteOrder);
    // JavaScript's own order disagrees on the emoji and U+F8FF: the reason comparePaths exists.
    expect([...names].sort()).not.toEqual(sqliteOrder);
  });

  test("the walker yields paths in byte order, directories sorting as name + '/'", async () => {
    const dir = tempDir();
    try {
      makeTree(dir.path, TRICKY);
      const walked: string[] = [];
      for await (const entry of walk([dir.path])) walked.push(entry.path);
      expect(walked.length).toBe(6);
      expect(walked).toEqual([...walked].sort(comparePaths));
      expect(walked.indexOf(join(dir.path, "b.txt"))).toBeLessThan(walked.indexOf(join(dir.path, "b", "c")));
    } finally {
      dir.cleanup();
    }
  });

  test("a re-run over tricky names finds everything unchanged; a new file among them is new", async () => {
    env = await archiveEnv(TRICKY);
    expect((await env.run()).json.new).toBe(6);
    const again = await env.run();
    expect(again.json.unchanged).toBe(6);
    expect(again.json.new).toBe(0);
    writeFileSync(join(env.source, "b", "c0"), "new between c and c d");
    const third = await env.run();
    expect(third.json.new).toBe(1);
    expect(third.json.unchanged).toBe(6);
  });

  test("overlapping sources: the second walk over archived paths still finds them archived", async () => {
    env = await archiveEnv({ movies: { "a.mkv": "a", "b.mkv": "b" }, music: { "c.flac": "c" } });
    const both = [env.source, join(env.source, "movies")];
    const first = await blaine(["run", "--db", env.db, "--dest", env.disk, "--json", ...both]);
    expect(first.exitCode).toBe(0);
    expect(first.json.bytesCopied).toBe(3);
    const second = await blaine(["run", "--db", env.db, "--dest", env.disk, "--json", ...both]);
    expect(second.json.bytesCopied).toBe(0);
    expect(second.json.new).toBe(0);
  });
});
