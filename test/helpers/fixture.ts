import { Database } from "bun:sqlite";
import { closeSync, cpSync, lstatSync, openSync, writeSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, linkSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { applySqliteMigrations } from "../../lib/catalog/schema-version.ts";

/**
 * A fixture tree as plain data: a string is a file's content, an object a
 * directory, and the tagged forms make symlinks, hardlinks and large files.
 */
export type TreeSpec = { [name: string]: TreeNode };
export type TreeNode =
  | string
  | Uint8Array
  | TreeSpec
  | { readonly symlink: string }
  | { readonly hardlinkTo: string }
  | { readonly bytes: number; readonly seed: number };

function isTagged(node: TreeNode): node is { symlink: string } | { hardlinkTo: string } | { bytes: number; seed: number } {
  return typeof node === "object" && !(node instanceof Uint8Array) && ("symlink" in node || "hardlinkTo" in node || "bytes" in node);
}

/** A small deterministic generator (mulberry32) of numbers in [0, 1), so a failure can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic pseudo-random bytes: the same seed gives the same content. */
export function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

/** Creates `spec` below `root` (hardlink targets are paths relative to root). */
export function makeTree(root: string, spec: TreeSpec): void {
  mkdirSync(root, { recursive: true });
  const links: [string, string][] = [];
  const visit = (dir: string, node: TreeSpec) => {
    for (const [name, child] of Object.entries(node)) {
      const path = join(dir, name);
      if (typeof child === "string" || child instanceof Uint8Array) writeFileSync(path, child);
      else if (isTagged(child)) {
        if ("symlink" in child) symlinkSync(child.symlink, path);
        else if ("hardlinkTo" in child) links.push([join(root, child.hardlinkTo), path]);
        else writeFileSync(path, seededBytes(child.bytes, child.seed));
      } else {
        mkdirSync(path, { recursive: true });
        visit(path, child as TreeSpec);
      }
    }
  };
  visit(root, spec);
  for (const [target, path] of links) {
    mkdirSync(dirname(path), { recursive: true });
    linkSync(target, path);
  }
}

/** What a tree holds, comparable with toEqual: content (hex of sha1), mode, symlink targets, hardlink groups. */
export interface TreeSnapshot {
  [path: string]: { type: "file"; sha1: string; size: number; mode: number; mtime: number; link: number } | { type: "symlink"; target: string } | { type: "dir" };
}

export function snapshotTree(root: string, options: { mtimes?: boolean; skip?: (relative: string) => boolean } = {}): TreeSnapshot {
  const result: TreeSnapshot = {};
  const inodeGroups = new Map<number, number>();
  const walk = (dir: string, relative: string) => {
    for (const name of readdirSync(dir).sort()) {
      const rel = relative ? `${relative}/${name}` : name;
      if (options.skip?.(rel)) continue;
      const path = join(dir, name);
      const stats = lstatSync(path);
      if (stats.isDirectory()) {
        result[rel] = { type: "dir" };
        walk(path, rel);
      } else if (stats.isSymbolicLink()) result[rel] = { type: "symlink", target: readlinkSync(path) };
      else if (stats.isFile()) {
        const hasher = new Bun.CryptoHasher("sha1");
        hasher.update(readFileSync(path));
        // Hardlink groups numbered in order of appearance, so two trees compare.
        let group = 0;
        if (stats.nlink > 1) {
          group = inodeGroups.get(stats.ino) ?? inodeGroups.size + 1;
          inodeGroups.set(stats.ino, group);
        }
        result[rel] = {
          type: "file",
          sha1: hasher.digest("hex"),
          size: stats.size,
          mode: stats.mode & 0o7777,
          mtime: options.mtimes === false ? 0 : Math.floor(stats.mtimeMs),
          link: group,
        };
      }
    }
  };
  walk(root, "");
  return result;
}

/** Only the files and symlinks of a snapshot (directories come and go with pruning). */
export function filesOf(snapshot: TreeSnapshot): TreeSnapshot {
  return Object.fromEntries(Object.entries(snapshot).filter(([, value]) => value.type !== "dir"));
}

/** A temp directory per test; `cleanup` removes it (and anything mounted is the test's to unmount). */
export function tempDir(prefix = "blaine-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export function setMtime(path: string, date: Date): void {
  utimesSync(path, date, date);
}

/** Overwrites `bytes` at offset `at` of an existing file, in place (bit rot for the tests). */
export function damage(path: string, at: number, bytes: Uint8Array): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    closeSync(fd);
  }
}

/**
 * An SQLite catalog made at `path` as an older release made it: only the
 * first `count` of the drizzle-kit migrations in `migrations` applied (a
 * copy of the folder, its journal cut short, beside `path`), by the
 * migrator Blaine runs. Open: fill it, then close it.
 */
export function sqliteCatalogAsOf(migrations: string, count: number, path: string): Database {
  const folder = mkdtempSync(join(dirname(path), "migrations-"));
  mkdirSync(join(folder, "meta"));
  const journal = JSON.parse(readFileSync(join(migrations, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };
  journal.entries = journal.entries.slice(0, count);
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify(journal));
  for (const { tag } of journal.entries) cpSync(join(migrations, `${tag}.sql`), join(folder, `${tag}.sql`));
  const sqlite = new Database(path);
  applySqliteMigrations(sqlite, folder);
  return sqlite;
}
