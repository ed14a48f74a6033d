import { join } from "node:path";
import { blaine, type CliResult } from "./cli.ts";
import { makeTree, tempDir, type TreeSpec } from "./fixture.ts";

/**
 * One archive for a test: a source tree, a host catalog and one archive
 * disk (a plain directory), with helpers that run the CLI against them.
 */
export async function archiveEnv(spec: TreeSpec = {}, options: { disk?: string } = {}) {
  const dir = tempDir();
  const source = join(dir.path, "src");
  const disk = options.disk ?? join(dir.path, "disk");
  const db = join(dir.path, "catalog.db");
  makeTree(source, spec);
  const base = ["--db", db, "--dest", disk];
  const init = await blaine(["disk", "init", disk, "--label", "A", "--db", db]);
  if (init.exitCode !== 0) throw new Error(`disk init failed: ${init.stderr}`);
  return {
    root: dir.path,
    source,
    disk,
    db,
    /** Where an archived source path sits on the disk. */
    onDisk: (relative = "") => join(disk, source, relative),
    run: (...args: string[]): Promise<CliResult> => blaine(["run", ...base, "--json", ...args, source]),
    cli: (...args: string[]): Promise<CliResult> => blaine([...args, ...base]),
    restore: (to: string, ...paths: string[]) => blaine(["restore", ...(paths.length ? paths : [source]), "--to", to, ...base, "--json"]),
    verify: () => blaine(["verify", ...base, "--json"]),
    cleanup: dir.cleanup,
  };
}
export type ArchiveEnv = Awaited<ReturnType<typeof archiveEnv>>;
