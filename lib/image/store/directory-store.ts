import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { open, readdir, readFile, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { BlaineError, ExitCode, UsageError, errnoCode } from "../../errors.ts";
import { fsyncDirectory, fsyncDirectoryAsync, writeFileAtomic, writeFileAtomicAsync } from "../../fs/atomic.ts";
import { isProcessAlive } from "../../fs/process-alive.ts";
import { HASH_PATTERN, type ChunkStore } from "./chunk-store.ts";
import { crashPoint } from "../../crash-point.ts";

/**
 * A chunk store in a directory:
 *
 *   STORE/store.json                 {"format":"blaine-image-store","version":1}
 *   STORE/chunks/ab/abcdef…          one chunk object per distinct block (sha256 hex)
 *   STORE/versions/UID.json          each version's metadata (the export document)
 *   STORE/meta/NAME.json             documents of products built on the store (a volume archive's settings)
 *
 * Every file is written to a temp beside it, fsynced and renamed into place;
 * 256 subdirectories keep directories small at millions of chunks.
 */
const MARKER = { format: "blaine-image-store", version: 1 };
const TEMP_PATTERN = /^\..+\.(\d+)\.[a-z0-9]+\.tmp$/;

/**
 * What a creation killed before store.json was written leaves: the empty
 * chunks/ and versions/ folders and the marker's temp. The next command that
 * may create the store finishes it instead of refusing the folder as foreign.
 */
function leftOfUnfinishedCreate(root: string, name: string): boolean {
  if (name.startsWith(".store.json.") && name.endsWith(".tmp")) return true;
  if (name !== "chunks" && name !== "versions") return false;
  const path = join(root, name);
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

export class DirectoryStore implements ChunkStore {
  readonly name: string;
  readonly #chunks: string;
  readonly #versions: string;
  readonly #meta: string;
  /** Chunk directories holding renames not yet fsynced (see flush). */
  readonly #unsynced = new Set<string>();
  /** Subdirectories known to exist (made and fsynced once). */
  readonly #madeDirs = new Set<string>();

  private constructor(root: string) {
    this.name = root;
    this.#chunks = join(root, "chunks");
    this.#versions = join(root, "versions");
    this.#meta = join(root, "meta");
  }

  static open(root: string, create: boolean): DirectoryStore {
    const marker = join(root, "store.json");
    if (!existsSync(marker)) {
      if (!create) throw new UsageError(`--store ${root}: not an image store (no store.json)`);
      if (existsSync(root) && statSync(root).isDirectory() && readdirSync(root).some((name) => !leftOfUnfinishedCreate(root, name))) {
        throw new UsageError(`--store ${root}: the directory is not empty and not an image store`);
      }
      mkdirSync(join(root, "chunks"), { recursive: true });
      mkdirSync(join(root, "versions"), { recursive: true });
      crashPoint("image-store-folders-made");
      writeFileAtomic(marker, `${JSON.stringify(MARKER)}\n`);
    } else {
      let parsed: { format?: string; version?: number };
      try {
        parsed = JSON.parse(readFileSync(marker, "utf8"));
      } catch {
        throw new BlaineError(`--store ${root}: store.json is damaged`, ExitCode.failure);
      }
      if (parsed.format !== MARKER.format) throw new UsageError(`--store ${root}: not an image store`);
      if ((parsed.version ?? 0) > MARKER.version) throw new BlaineError(`--store ${root} was written by a newer Blaine; upgrade Blaine to use it`);
    }
    return new DirectoryStore(root);
  }

  chunkFile(hash: string): string {
    return join(this.#chunks, hash.slice(0, 2), hash);
  }

  async putChunk(hash: string, object: Uint8Array): Promise<void> {
    const dir = join(this.#chunks, hash.slice(0, 2));
    if (!this.#madeDirs.has(dir)) {
      if (!existsSync(dir)) {
        // Not recursive: with the store's disk gone (unmounted under a running backup), chunks/ is gone too and
        // this fails, rather than making chunks/ in the empty mountpoint and filling the disk beneath it.
        try {
          mkdirSync(dir);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        fsyncDirectory(this.#chunks);
      }
      this.#madeDirs.add(dir);
    }
    await writeFileAtomicAsync(this.chunkFile(hash), object);
    this.#unsynced.add(dir);
  }

  /** The renames of the chunks stored since the last flush, made durable: one fsync per chunk directory touched. */
  async flush(): Promise<void> {
    const dirs = [...this.#unsynced];
    this.#unsynced.clear();
    // All at once: one after another, each fsync's three trips to the I/O threads (open, sync, close) waited for
    // the last (a 1 % send of a 4 GiB volume touches some 200 of the 256 directories, at the end of its pipeline).
    await Promise.all(dirs.map((dir) => fsyncDirectoryAsync(dir)));
  }

  async getChunk(hash: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.chunkFile(hash));
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw error;
    }
  }

  async readChunkInto(hash: string, into: Uint8Array): Promise<number | undefined> {
    let handle;
    try {
      handle = await open(this.chunkFile(hash), "r");
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size > into.length) return size;
      let done = 0;
      while (done < size) {
        const { bytesRead } = await handle.read(into, done, size - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    } finally {
      await handle.close();
    }
  }

  async chunkSize(hash: string): Promise<number | undefined> {
    try {
      return (await stat(this.chunkFile(hash))).size;
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw error;
    }
  }

  async deleteChunk(hash: string): Promise<void> {
    await unlink(this.chunkFile(hash)).catch((error) => {
      if (errnoCode(error) !== "ENOENT") throw error;
    });
  }

  async *listChunks(): AsyncGenerator<string[]> {
    for (const sub of (await readdir(this.#chunks)).sort()) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      yield (await readdir(join(this.#chunks, sub))).filter((name) => HASH_PATTERN.test(name)).sort();
    }
  }

  async putVersionDoc(uid: string, doc: string | Uint8Array): Promise<void> {
    await writeFileAtomicAsync(join(this.#versions, `${uid}.json`), typeof doc === "string" ? Buffer.from(doc) : doc);
    fsyncDirectory(this.#versions);
  }

  async getVersionDoc(uid: string): Promise<string | undefined> {
    return (await this.getVersionDocBytes(uid))?.toString("utf8");
  }

  async getVersionDocBytes(uid: string): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.#versions, `${uid}.json`));
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw error;
    }
  }

  async deleteVersionDoc(uid: string): Promise<void> {
    await rm(join(this.#versions, `${uid}.json`), { force: true });
    fsyncDirectory(this.#versions);
  }

  async listVersionDocs(): Promise<string[]> {
    return (await readdir(this.#versions)).filter((name) => name.endsWith(".json") && !name.startsWith(".")).map((name) => name.slice(0, -5)).sort();
  }

  async putMetaDoc(name: string, text: string): Promise<void> {
    if (!existsSync(this.#meta)) {
      mkdirSync(this.#meta, { recursive: true });
      fsyncDirectory(this.name);
    }
    await writeFileAtomicAsync(join(this.#meta, `${name}.json`), Buffer.from(text));
    fsyncDirectory(this.#meta);
  }

  async getMetaDoc(name: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.#meta, `${name}.json`), "utf8");
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw error;
    }
  }

  async deleteMetaDoc(name: string): Promise<void> {
    await rm(join(this.#meta, `${name}.json`), { force: true });
    if (existsSync(this.#meta)) fsyncDirectory(this.#meta);
  }

  async removeStaleTemps(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    const dirs = [this.#versions, this.#meta, ...(await readdir(this.#chunks)).map((sub) => join(this.#chunks, sub))];
    for (const dir of dirs) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const writer = TEMP_PATTERN.exec(name);
        // A temp of a live process is a chunk being written right now.
        if (!writer || isProcessAlive(Number(writer[1]))) continue;
        const path = join(dir, name);
        const info = await stat(path).catch(() => undefined);
        if (info && info.mtimeMs <= cutoff) {
          await rm(path, { force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  /** Nothing held open. */
  async close(): Promise<void> {}
}
