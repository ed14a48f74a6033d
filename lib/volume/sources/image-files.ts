import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../errors.ts";
import { fsyncDirectory, fsyncFileAsync } from "../../fs/atomic.ts";
import { fileExtents, movedRanges } from "../../fs/fiemap.ts";
import { ReflinkUnsupported, reflinkCopy } from "../../system/reflink.ts";
import { chunksOfRanges, type ChangeSource, type VolumeSnapshot } from "./change-source.ts";

/**
 * Image files in a directory (VM disks on btrfs or XFS). A volume's
 * snapshot is a reflink copy in SOURCE/.blaine-volume/NAME.snap (made at
 * once, sharing every extent); the next session's copy is NAME.next, and
 * the chunks changed between them are those whose extents moved (FIEMAP).
 * On a file system without reflinks there is no snapshot: the live file is
 * read whole and compared with the last session's hashes.
 */
export const SNAPSHOT_DIR = ".blaine-volume";

export class ImageFilesSource implements ChangeSource {
  readonly kind = "image files";
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  #live(name: string): string {
    return join(this.#dir, name);
  }

  #snapshots(): string {
    return join(this.#dir, SNAPSHOT_DIR);
  }

  async check(name: string): Promise<void> {
    const path = this.#live(name);
    if (!existsSync(path)) throw new UsageError(`volume ${name}: ${path} does not exist`);
    const stats = statSync(path);
    if (!stats.isFile() && !stats.isBlockDevice()) throw new UsageError(`volume ${name}: ${path} is not an image file or a block device`);
  }

  async livePath(name: string): Promise<string> {
    await this.check(name);
    return this.#live(name);
  }

  async snapshot(name: string, chunkSize: number, delta: boolean): Promise<VolumeSnapshot> {
    await this.check(name);
    const live = this.#live(name);
    const snapshots = this.#snapshots();
    const previous = join(snapshots, `${name}.snap`);
    const next = join(snapshots, `${name}.next`);
    if (!existsSync(snapshots)) {
      mkdirSync(snapshots, { mode: 0o700 });
      fsyncDirectory(this.#dir);
    }
    rmSync(next, { force: true });
    try {
      await reflinkCopy(live, next);
    } catch (error) {
      if (!(error instanceof ReflinkUnsupported)) throw error;
      return { path: live, changed: undefined, method: "full read", commit: async () => {}, discard: async () => {} };
    }
    const changed = delta && existsSync(previous) ? movedChunks(previous, next, chunkSize) : undefined;
    // The copy is made durable on the I/O threads while the session is read (after its extents are mapped: on
    // btrfs an fsync holds the inode's lock, which FIEMAP waits for). It must be before it replaces the old.
    const durable = fsyncFileAsync(next);
    durable.catch(() => {});
    return {
      path: next,
      changed,
      method: changed ? "extents" : "full read",
      commit: async () => {
        await durable;
        // The rename is not fsynced: lost in a crash, the old snapshot stays beside a .next the next send
        // replaces, and its delta covers more than needed (tracking already counts from the new session), never less.
        renameSync(next, previous);
      },
      discard: async () => {
        await durable.catch(() => {});
        rmSync(next, { force: true });
      },
    };
  }

  async forget(name: string): Promise<void> {
    for (const suffix of [".snap", ".next"]) rmSync(join(this.#snapshots(), `${name}${suffix}`), { force: true });
  }
}

/** The chunks whose extents differ between two reflink copies; undefined when FIEMAP cannot say. */
function movedChunks(before: string, after: string, chunkSize: number): { read: Set<number>; zero: Set<number> } | undefined {
  const old = openSync(before, "r");
  const now = openSync(after, "r");
  try {
    const size = fstatSync(now).size;
    const oldExtents = fileExtents(old, fstatSync(old).size);
    const newExtents = fileExtents(now, size);
    if (!oldExtents || !newExtents) return undefined;
    return { read: chunksOfRanges(movedRanges(oldExtents, newExtents, size), size, chunkSize), zero: new Set() };
  } finally {
    closeSync(old);
    closeSync(now);
  }
}
