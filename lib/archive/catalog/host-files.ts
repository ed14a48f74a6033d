import type { Database, Statement } from "bun:sqlite";
import type { FileRecord } from "./records.ts";

/** The host catalog's `files` rows (one per archived path, naming the disk that holds it), as the writers record them. */
export class HostFiles {
  readonly #upsert: Statement;
  readonly #delete: Statement;
  readonly #setInode: Statement;

  constructor(db: Database) {
    this.#upsert = db.prepare(
      `INSERT INTO main.files (path, kind, size, mtime_ms, mtime_nsec, mode, dev, ino, hash, link_target, disk_id, archived_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, size = excluded.size, mtime_ms = excluded.mtime_ms, mtime_nsec = excluded.mtime_nsec,
         mode = excluded.mode, dev = excluded.dev, ino = excluded.ino, hash = excluded.hash,
         link_target = excluded.link_target, disk_id = excluded.disk_id, archived_at = excluded.archived_at`,
    );
    this.#delete = db.prepare("DELETE FROM main.files WHERE path = ?");
    this.#setInode = db.prepare("UPDATE main.files SET dev = ?, ino = ? WHERE path = ?");
  }

  /** Records `r` as held by disk `diskId`, replacing what the path held before. */
  upsert(r: FileRecord, diskId: string, now: number): void {
    this.#upsert.run(r.path, r.kind, r.size, r.mtimeMs, r.mtimeNsec ?? null, r.mode, r.dev, r.ino, r.hash, r.linkTarget, diskId, now);
  }

  delete(path: string): void {
    this.#delete.run(path);
  }

  /** The source device and inode of an unchanged path, found anew (see InodeRefresh). */
  setInode(path: string, dev: number, ino: number): void {
    this.#setInode.run(dev, ino, path);
  }
}
