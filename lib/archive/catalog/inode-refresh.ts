import type { ArchiveCatalog } from "./archive-catalog.ts";

/** Refreshes per transaction: one commit syncs the catalog several times. */
const BATCH = 1000;

/**
 * Source inodes that changed under unchanged files (a pool rebuilt, a tree
 * copied with `cp -a`), recorded anew in batches, so that the next run
 * recognises those files by inode again instead of reading them. The
 * differ notes them when it trusts path, size and mtime alone; the hasher
 * when the content's hash shows the file is unchanged. Whoever notes them
 * flushes at its end; a batch lost to a kill is found again next time.
 */
export class InodeRefresh {
  readonly #catalog: ArchiveCatalog;
  #pending: { path: string; dev: number; ino: number }[] = [];

  constructor(catalog: ArchiveCatalog) {
    this.#catalog = catalog;
  }

  note(path: string, dev: number, ino: number): void {
    this.#pending.push({ path, dev, ino });
    if (this.#pending.length >= BATCH) this.flush();
  }

  flush(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    const files = this.#catalog.files;
    this.#catalog.transaction(() => {
      for (const { path, dev, ino } of batch) files.setInode(path, dev, ino);
    });
  }
}
