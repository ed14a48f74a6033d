import { Database } from "bun:sqlite";
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { blaine, type CliResult } from "./cli.ts";
import { makeTree, tempDir, type TreeSpec } from "./fixture.ts";
import { canMount, mountTmpfs } from "./mounts.ts";

/**
 * One archive with several disks for a test: a source tree, a host catalog,
 * and disks that are size-limited tmpfs mounts when this process may mount
 * (real disks that fill up), else plain directories with --capacity. A disk
 * is "offline" simply by not being named with --dest.
 */
export async function multiDiskEnv(spec: TreeSpec = {}) {
  const dir = tempDir("blaine-multi-");
  const source = join(dir.path, "src");
  const db = join(dir.path, "catalog.db");
  const tmpfs = canMount();
  const unmounts: (() => void)[] = [];
  makeTree(source, spec);
  const destArgs = (disks: readonly string[]) => disks.flatMap((disk) => ["--dest", disk]);

  /** A directory for a disk (or a twin): a tmpfs of `bytes` when possible. */
  const diskDir = (name: string, bytes: number): string => {
    const path = join(dir.path, name);
    if (tmpfs) unmounts.push(mountTmpfs(path, String(bytes)));
    return path;
  };

  return {
    root: dir.path,
    source,
    db,
    tmpfs,
    diskDir,
    /** `blaine disk init` of a new disk; returns its directory. */
    async initDisk(label: string, bytes: number): Promise<string> {
      const path = diskDir(label, bytes);
      const result = await blaine(["disk", "init", path, "--label", label, "--db", db, ...(tmpfs ? [] : ["--capacity", String(bytes)])]);
      if (result.exitCode !== 0) throw new Error(`disk init ${label} failed: ${result.stderr}`);
      return path;
    },
    /** `blaine run --json` of the source with these disks mounted. */
    run: (disks: readonly string[], ...args: string[]): Promise<CliResult> => blaine(["run", "--db", db, ...destArgs(disks), "--json", ...args, source]),
    /** Any command with the catalog and these disks. */
    cli: (args: readonly string[], disks: readonly string[] = []): Promise<CliResult> => blaine([...args, "--db", db, ...destArgs(disks)]),
    /** Where an archived source path sits on a disk directory. */
    onDisk: (disk: string, relative: string) => join(disk, source, relative),
    path: (relative: string) => join(source, relative),
    cleanup: () => {
      while (unmounts.length) unmounts.pop()!();
      dir.cleanup();
    },
  };
}
export type MultiDiskEnv = Awaited<ReturnType<typeof multiDiskEnv>>;

/** What a disk holds on its file system (files and symlinks, by archived path) and what its own catalog says it holds. */
export function diskContents(disk: string): { onFileSystem: string[]; inCatalog: string[] } {
  const onFileSystem: string[] = [];
  const walk = (path: string, relative: string) => {
    for (const name of readdirSync(path)) {
      if (relative === "" && name === ".blaine") continue;
      const child = join(path, name);
      const stats = lstatSync(child);
      if (stats.isDirectory()) walk(child, `${relative}/${name}`);
      else onFileSystem.push(`${relative}/${name}`);
    }
  };
  walk(disk, "");
  const sqlite = new Database(join(disk, ".blaine", "catalog.db"), { readonly: true });
  const inCatalog = (sqlite.query("SELECT path FROM entries ORDER BY path").all() as { path: string }[]).map((row) => row.path);
  sqlite.close();
  return { onFileSystem: onFileSystem.sort(), inCatalog };
}

/** `diff -r` of two copies' data trees (Blaine's own .blaine directories aside): "" when identical. */
export function diffTrees(a: string, b: string): string {
  const result = Bun.spawnSync(["diff", "-r", "--no-dereference", "--exclude=.blaine", a, b]);
  return result.stdout.toString() + result.stderr.toString();
}
