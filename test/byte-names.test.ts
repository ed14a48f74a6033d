/**
 * Names that are not valid UTF-8 (Linux allows any byte but "/" and NUL):
 * the escape that keeps them as strings, and real runs over trees holding
 * such files, directories, symlink targets and hardlinks. Every check on
 * the file system compares bytes (readdir with `encoding: "buffer"`), never
 * Bun's lossy strings.
 */
import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bytesOfText, fsPath, textFromBytes } from "../lib/fs/byte-names.ts";
import { comparePaths } from "../lib/catalog/path-order.ts";
import { walk } from "../lib/archive/stages/walker.ts";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { seededBytes, tempDir } from "./helpers/fixture.ts";
import { diffTrees, multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";
import { hasProgram } from "../lib/system/exec.ts";

// These tests run the real CLI on real trees: Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
let multi: MultiDiskEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
  multi?.cleanup();
  multi = undefined;
});

/** A name (or path piece) from text and raw bytes: `bytes("bad", [0xff], "name")`. */
function bytes(...parts: (string | number[])[]): Buffer {
  return Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part, "utf8") : Buffer.from(part))));
}

const under = (root: string, ...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(root), ...names.map((name) => Buffer.concat([Buffer.from("/"), name]))]);

const BAD_FILE = bytes("bad", [0xff], "name");
const BAD_DIR = bytes("dir", [0xfe]);
const INNER = bytes("inner", [0x80], ".txt");
const LINK = bytes("link", [0xfc]);
const LINK_TARGET = bytes("target", [0xfb], "/x", [0xc3]);
const HARD_1 = bytes("hard", [0xfa], "1");
const HARD_2 = bytes("hard", [0xfa], "2");
/** Valid UTF-8, but it holds the escape character itself. */
const LITERAL_ESCAPE = bytes("lit\uFDD0FFname");
/** Valid UTF-8 holding U+FFFD, which Bun also uses for lost bytes. */
const REPLACEMENT = bytes("repl\uFFFD.txt");

/** A source tree with every kind of entry under names that are not UTF-8; returns how many files and symlinks. */
function makeBadTree(root: string): number {
  mkdirSync(root, { recursive: true });
  writeFileSync(under(root, BAD_FILE), "content of a bad name");
  mkdirSync(under(root, BAD_DIR));
  writeFileSync(under(root, BAD_DIR, INNER), seededBytes(300_000, 7));
  writeFileSync(under(root, BAD_DIR, bytes("plain.txt")), "plain name in a bad directory");
  symlinkSync(LINK_TARGET, under(root, LINK));
  writeFileSync(under(root, HARD_1), "hardlinked pair");
  linkSync(under(root, HARD_1), under(root, HARD_2));
  writeFileSync(under(root, LITERAL_ESCAPE), "literal U+FDD0");
  writeFileSync(under(root, REPLACEMENT), "literal U+FFFD");
  return 8;
}

/** A tree by its real bytes: hex of each relative path → what is there (content hex, symlink target hex, inode group). */
function byteTree(root: string | Buffer, options: { skipTop?: string } = {}): Record<string, string> {
  const result: Record<string, string> = {};
  const inodes = new Map<number, number>();
  const visit = (dir: Buffer, relative: Buffer) => {
    for (const name of readdirSync(dir, { encoding: "buffer" })) {
      if (relative.length === 0 && options.skipTop === name.toString()) continue;
      const path = Buffer.concat([dir, Buffer.from("/"), name]);
      const rel = relative.length ? Buffer.concat([relative, Buffer.from("/"), name]) : name;
      const stats = lstatSync(path);
      const key = rel.toString("hex");
      if (stats.isDirectory()) {
        result[key] = "dir";
        visit(path, rel);
      } else if (stats.isSymbolicLink()) result[key] = `symlink ${readlinkSync(path, { encoding: "buffer" }).toString("hex")}`;
      else {
        let group = "";
        if (stats.nlink > 1) {
          if (!inodes.has(stats.ino)) inodes.set(stats.ino, inodes.size);
          group = ` link#${inodes.get(stats.ino)}`;
        }
        result[key] = `file ${new Bun.CryptoHasher("sha1").update(readFileSync(path)).digest("hex")}${group}`;
      }
    }
  };
  visit(Buffer.isBuffer(root) ? root : Buffer.from(root), Buffer.alloc(0));
  return result;
}

/** The catalog's string for a source path given as bytes. */
const archived = (source: string, ...names: Buffer[]) => textFromBytes(under(source, ...names));

describe("the escape", () => {
  test("names that are valid UTF-8 without U+FDD0 are their plain string; fsPath hands them back unchanged", () => {
    for (const name of ["x", "Ünïcødé 映画 🎬.mkv", "line\nbreak", "repl\uFFFD", "\u{10FFFF}", "\uF8FF"]) {
      expect(textFromBytes(Buffer.from(name))).toBe(name);
      expect(fsPath(name)).toBe(name);
    }
  });

  test("invalid bytes and a literal U+FDD0 are escaped as U+FDD0 + two uppercase hex digits", () => {
    expect(textFromBytes(BAD_FILE)).toBe("bad\uFDD0FFname");
    expect(textFromBytes(LITERAL_ESCAPE)).toBe("lit\uFDD0EF\uFDD0B7\uFDD090FFname");
    // Overlong, surrogate, above U+10FFFF and truncated sequences are not UTF-8.
    expect(textFromBytes(Buffer.from([0xc0, 0xaf]))).toBe("\uFDD0C0\uFDD0AF");
    expect(textFromBytes(Buffer.from([0xed, 0xa0, 0x80]))).toBe("\uFDD0ED\uFDD0A0\uFDD080");
    expect(textFromBytes(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe("\uFDD0F4\uFDD090\uFDD080\uFDD080");
    expect(textFromBytes(Buffer.from([0x61, 0xe6, 0x98]))).toBe("a\uFDD0E6\uFDD098");
    expect(Buffer.compare(fsPath("/a/bad\uFDD0FFname") as Buffer, bytes("/a/bad", [0xff], "name"))).toBe(0);
    // A U+FDD0 the escape never made (no two uppercase hex digits after it) stands for itself.
    expect(bytesOfText("x\uFDD0ab").toString()).toBe("x\uFDD0ab");
  });

  test("round trip: any byte string comes back byte for byte, as a well-formed string", () => {
    const alphabet = [0x00, 0x2f, 0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xc3, 0xa9, 0xe0, 0xed, 0xa0, 0xef, 0xb7, 0x90, 0xf0, 0x9f, 0x98, 0x80, 0xf4, 0xff];
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 20_000; n++) {
      const length = Math.floor(random() * 16);
      const input = Buffer.alloc(length);
      for (let i = 0; i < length; i++) input[i] = random() < 0.5 ? Math.floor(random() * 256) : alphabet[Math.floor(random() * alphabet.length)];
      const text = textFromBytes(input);
      expect(text.isWellFormed()).toBe(true);
      expect(Buffer.compare(bytesOfText(text), input)).toBe(0);
      // The escape is canonical: decoding and encoding again gives the same string.
      expect(textFromBytes(bytesOfText(text))).toBe(text);
    }
  });

  test("the walker lists such names, lstats them, and yields them in the catalog's order", async () => {
    const dir = tempDir();
    try {
      const count = makeBadTree(dir.path);
      const walked = [];
      for await (const entry of walk([dir.path], { onError: (path, message) => expect(`${path}: ${message}`).toBe("no error") })) walked.push(entry);
      expect(walked.length).toBe(count);
      const paths = walked.map((entry) => entry.path);
      expect(paths).toEqual([...paths].sort(comparePaths));
      expect(paths).toContain(archived(dir.path, BAD_DIR, INNER));
      const link = walked.find((entry) => entry.kind === "symlink")!;
      expect(link.linkTarget).toBe(textFromBytes(LINK_TARGET));
      expect(link.size).toBe(LINK_TARGET.length);
    } finally {
      dir.cleanup();
    }
  });
});

describe("archiving names that are not UTF-8", () => {
  test("run, ls, verify and restore: the disk and the restored tree hold the exact bytes", async () => {
    env = await archiveEnv({});
    const count = makeBadTree(env.source);
    const run = await env.run();
    expect(run.json.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(count);
    // One copy of the hardlinked pair's data: the second is a link on the disk too.
    expect(run.json.bytesCopied).toBe(
      ["content of a bad name", "plain name in a bad directory", "hardlinked pair", "literal U+FDD0", "literal U+FFFD"].reduce((sum, text) => sum + text.length, 300_000),
    );
    expect(byteTree(env.onDisk())).toEqual(byteTree(env.source));

    const listed = await env.cli("ls", "--json");
    const rows = listed.json.files as { path: string; kind: string; size: number; linkTarget: string | null }[];
    expect(rows.map((row) => row.path).sort()).toEqual(
      [BAD_FILE, LINK, HARD_1, HARD_2, LITERAL_ESCAPE, REPLACEMENT].map((name) => archived(env!.source, name)).concat([archived(env.source, BAD_DIR, INNER), archived(env.source, BAD_DIR, bytes("plain.txt"))]).sort(),
    );
    const link = rows.find((row) => row.kind === "symlink")!;
    expect(link.linkTarget).toBe(textFromBytes(LINK_TARGET));
    expect(link.size).toBe(LINK_TARGET.length);
    // A glob matches the escaped form like any other name.
    const globbed = await env.cli("ls", "--json", `${env.source}/bad*`);
    expect(globbed.json.files.map((row: { path: string }) => row.path)).toEqual([archived(env.source, BAD_FILE)]);

    const verified = await env.verify();
    expect(verified.json.disks[0].unexpected).toEqual([]);
    expect(verified.exitCode).toBe(0);

    const to = join(env.root, "restored");
    const restored = await env.restore(to);
    expect(restored.json.errors).toEqual([]);
    expect(restored.exitCode).toBe(0);
    expect(byteTree(join(to, env.source))).toEqual(byteTree(env.source));

    // One file by its archived path (as ls shows it).
    const one = join(env.root, "one");
    expect((await env.restore(one, archived(env.source, BAD_DIR, INNER))).exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(under(join(one, env.source), BAD_DIR, INNER)), Buffer.from(seededBytes(300_000, 7)))).toBe(0);

    // Nothing changed: a second run finds every file unchanged.
    const again = await env.run();
    expect(again.json.unchanged).toBe(count);
    expect(again.json.new + again.json.modified + again.json.renamed).toBe(0);
  });

  test("human output shows such bytes as \\xFF (--json keeps the catalog's escape), and a path typed that way is found", async () => {
    env = await archiveEnv({});
    makeBadTree(env.source);
    expect((await env.run()).exitCode).toBe(0);
    const human = await env.cli("ls");
    expect(human.stdout).toContain(`${env.source}/bad\\xFFname\n`);
    expect(human.stdout).toContain(`${env.source}/link\\xFC -> target\\xFB/x\\xC3\n`);
    expect(human.stdout).not.toContain("\uFDD0");
    const typed = `${env.source}/dir\\xFE`;
    const listed = await env.cli("ls", "--json", typed);
    expect(listed.json.files.map((row: { path: string }) => row.path).sort()).toEqual([archived(env.source, BAD_DIR, INNER), archived(env.source, BAD_DIR, bytes("plain.txt"))]);
    const globbed = await env.cli("ls", "--json", `${env.source}/dir\\xFE/*.txt`);
    expect(globbed.json.files.length).toBe(2);
    const to = join(env.root, "typed");
    const restored = await env.restore(to, `${env.source}/bad\\xFFname`);
    expect(restored.json.restored).toBe(1);
    expect(readFileSync(under(join(to, env.source), BAD_FILE), "utf8")).toBe("content of a bad name");
  });

  test("a rename between runs is a rename on the disk (no bytes copied); a delete removes the file and its empty directory", async () => {
    env = await archiveEnv({});
    makeBadTree(env.source);
    expect((await env.run()).exitCode).toBe(0);
    const MOVED = bytes("moved", [0xf0, 0x28]);
    renameSync(under(env.source, BAD_DIR, INNER), under(env.source, MOVED));
    rmSync(under(env.source, BAD_DIR, bytes("plain.txt")));
    rmSync(under(env.source, BAD_DIR), { recursive: true });
    rmSync(under(env.source, BAD_FILE));
    // Two of eight files deleted is above the default deletion safety stop.
    const second = await env.run("--max-delete", "100%");
    expect(second.json.errors).toEqual([]);
    expect(second.exitCode).toBe(0);
    expect(second.json.renamed).toBe(1);
    expect(second.json.deleted).toBe(2);
    expect(second.json.bytesCopied).toBe(0);
    const onDisk = byteTree(env.onDisk());
    expect(onDisk).toEqual(byteTree(env.source));
    expect(Object.keys(onDisk)).not.toContain(BAD_DIR.toString("hex"));
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("kill -9 after placing and renaming such files, before the catalog commit: recovery tells from their bytes what happened", async () => {
    env = await archiveEnv({});
    const count = makeBadTree(env.source);
    /** A run killed after placing and renaming, before its commit; the next run recovers it all. */
    const crashThenRecover = async (archive: ArchiveEnv) => {
      await blaineKilledAt("before-commit:1", ["run", "--db", archive.db, "--dest", archive.disk, archive.source]);
      const recovered = await archive.run();
      expect(recovered.exitCode).toBe(0);
      expect(recovered.json.recovered).toBeGreaterThan(0);
      expect(recovered.json.unchanged).toBe(count);
      return recovered;
    };
    expect((await crashThenRecover(env)).json.bytesCopied).toBe(0);

    renameSync(under(env.source, BAD_FILE), under(env.source, bytes("again", [0xff])));
    await crashThenRecover(env);
    expect(byteTree(env.onDisk())).toEqual(byteTree(env.source));
    expect((await env.verify()).exitCode).toBe(0);
  });

  test("a new file with the content of an archived one is stored as a hardlink to it", async () => {
    env = await archiveEnv({});
    makeBadTree(env.source);
    // A whole second, so the new file below can be given the very same mtime (issue 12.11: a hardlink shares it).
    const second0 = Math.floor(Date.now() / 1000) - 60;
    utimesSync(under(env.source, BAD_DIR, INNER), second0, second0);
    expect((await env.run()).exitCode).toBe(0);
    const DUP = bytes("dup", [0x81]);
    writeFileSync(under(env.source, DUP), seededBytes(300_000, 7));
    utimesSync(under(env.source, DUP), second0, second0);
    const second = await env.run();
    expect(second.exitCode).toBe(0);
    expect(second.json.deduplicated).toBe(1);
    expect(second.json.bytesCopied).toBe(0);
    expect(lstatSync(under(env.onDisk(), DUP)).ino).toBe(lstatSync(under(env.onDisk(), BAD_DIR, INNER)).ino);
    expect((await env.verify()).exitCode).toBe(0);
  });

  test.skipIf(!hasProgram("dc3dd"))("--copier dc3dd: such files are copied by the built-in copier, with the right bytes", async () => {
    env = await archiveEnv({ "ordinary.txt": "copied by dc3dd" });
    const count = makeBadTree(env.source) + 1;
    const run = await env.run("--copier", "dc3dd");
    expect(run.json.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(count);
    expect(byteTree(env.onDisk())).toEqual(byteTree(env.source));
    expect((await env.verify()).exitCode).toBe(0);
  });

  test.skipIf(!hasProgram("par2"))("--parity-engine par2 makes the sets of such files (par2cmdline gets a UTF-8 name)", async () => {
    env = await archiveEnv({});
    makeBadTree(env.source);
    const run = await env.run("--parity-engine", "par2");
    expect(run.json.errors).toEqual([]);
    expect(run.json.warnings ?? []).toEqual([]);
    expect(run.exitCode).toBe(0);
    const verified = await env.verify();
    expect(verified.json.parity.damagedSets).toEqual([]);
    expect(verified.exitCode).toBe(0);
  });

  test("restore and verify --repair repair damaged data under such a name from its parity (verify: its hardlink too)", async () => {
    env = await archiveEnv({});
    makeBadTree(env.source);
    writeFileSync(under(env.source, HARD_1), seededBytes(200_000, 3));
    expect((await env.run()).exitCode).toBe(0);
    const location = under(env.onDisk(), BAD_DIR, INNER);
    const data = readFileSync(location);
    data.fill(0, 1000, 6000);
    writeFileSync(location, data);
    const linked = readFileSync(under(env.onDisk(), HARD_1));
    linked.fill(0, 500, 900);
    writeFileSync(under(env.onDisk(), HARD_1), linked);
    const found = await env.verify();
    expect(found.exitCode).toBe(4);
    expect(found.json.disks[0].corrupt.map((item: { path: string }) => item.path).sort()).toEqual(
      [archived(env.source, BAD_DIR, INNER), archived(env.source, HARD_1), archived(env.source, HARD_2)].sort(),
    );
    // restore repairs its copy on the fly from the parity and leaves the disk alone.
    const to = join(env.root, "restored");
    const restored = await env.restore(to, archived(env.source, BAD_DIR, INNER));
    expect(restored.exitCode).toBe(0);
    expect(restored.json.damaged).toEqual([]);
    expect(Buffer.compare(readFileSync(under(join(to, env.source), BAD_DIR, INNER)), Buffer.from(seededBytes(300_000, 7)))).toBe(0);
    const repaired = await blaine(["verify", "--repair", "--json", "--db", env.db, "--dest", env.disk]);
    expect(repaired.exitCode).toBe(0);
    expect(byteTree(env.onDisk())).toEqual(byteTree(env.source));
    expect((await env.verify()).exitCode).toBe(0);
  });
});

describe("deferred actions and twins", () => {
  test("a twin away while such files are added, renamed and deleted catches up from the sources, byte for byte", async () => {
    multi = await multiDiskEnv({ docs: { keep: "keep" } });
    const e = multi;
    makeBadTree(e.path("docs"));
    const C = await e.initDisk("C", 16_000_000);
    expect((await e.run([C])).exitCode).toBe(0);
    const C2 = e.diskDir("C2", 16_000_000);
    const cloned = await e.cli(["disk", "clone", "C", C2, "--json"], [C]);
    expect(cloned.exitCode).toBe(0);
    expect(diffTrees(C, C2)).toBe("");
    expect(byteTree(C2, { skipTop: ".blaine" })).toEqual(byteTree(C, { skipTop: ".blaine" }));

    // C′ goes away; C receives a new file, a new symlink, a rename and a delete, all under bad names.
    const docs = e.path("docs");
    writeFileSync(under(docs, bytes("new", [0xe2, 0x82])), "added while the twin was away");
    renameSync(under(docs, BAD_FILE), under(docs, bytes("renamed", [0xfe])));
    rmSync(under(docs, LINK));
    symlinkSync(bytes("../elsewhere", [0xf8]), under(docs, bytes("newlink", [0xf9])));
    const onC = await e.run([C]);
    expect(onC.json.errors).toEqual([]);
    expect(onC.exitCode).toBe(0);
    expect(onC.json.renamed).toBe(1);
    const pending = await e.cli(["pending", "--json"]);
    expect(pending.json.actions.length).toBe(4);

    // C′ comes back alone and applies the queue, fetching the new file from the sources.
    const back = await e.run([C2]);
    expect(back.json.errors).toEqual([]);
    expect(back.exitCode).toBe(0);
    expect(back.json.deferred.applied).toBe(4);
    expect((await e.cli(["pending", "--json"])).json.actions).toEqual([]);
    expect(byteTree(C2, { skipTop: ".blaine" })).toEqual(byteTree(C, { skipTop: ".blaine" }));
    expect(byteTree(join(C2, docs))).toEqual(byteTree(docs));
    expect((await e.cli(["verify", "--json"], [C, C2])).exitCode).toBe(0);
  });
});
